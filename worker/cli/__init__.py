"""The ``worker`` command line. Each verb lives in its own module with a ``register`` function.

Exit codes (CONTRACT.md): 0 done, 1 failed at run time, 2 bad usage or configuration. Every verb's
failures go through :func:`report`: one line each on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker import __version__
from worker.aws.errors import access_problem
from worker.cli import (
    demo,
    dlq,
    embedded,
    health,
    references,
    results,
    run,
    setup,
    status,
    upload,
)
from worker.cli.common import EXIT_CONFIG, EXIT_FAILED
from worker.errors import ConfigError, WorkerError

VERBS = (run, demo, embedded, setup, upload, results, status, references, dlq, health)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="worker",
        description=(
            "Face-match worker: matches faces in new S3 uploads against reference photos with "
            "Amazon Rekognition and publishes one SNS result per upload. Settings come from the "
            "environment (or .env); AWS endpoints and credentials from boto3's own variables."
        ),
        epilog=(
            "Logs go to stderr: console lines on a terminal, JSON lines otherwise (LOG_FORMAT=json "
            "or console chooses); LOG_LEVEL is INFO for run and embedded, WARNING for the other "
            "verbs unless set. Exit codes: 0 done; 1 failed at run time (AWS unreachable, access "
            "denied); 2 bad usage or configuration (a setting, no AWS region or credentials, a bad "
            "endpoint URL) — one line on stderr per problem."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - report() re-raises what it cannot explain
        return report(exc)
    return code


def report(exc: Exception) -> int:
    """Say why a verb failed on stderr — one line per problem, never a traceback for what the
    user can fix — and return its exit code: 2 for configuration (settings, AWS region,
    credentials, endpoint URL), 1 for a failure at run time (unreachable, denied, refused).
    Anything else is a bug: re-raised, with its traceback."""
    problem = access_problem(exc)
    if problem is not None:
        print(f"worker: {problem.line}", file=sys.stderr)
        return EXIT_CONFIG if problem.is_configuration else EXIT_FAILED
    if isinstance(exc, ConfigError):
        for line in exc.problems:
            print(f"worker: configuration: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if isinstance(exc, WorkerError):
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_FAILED
    raise exc
