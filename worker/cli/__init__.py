"""The ``worker`` command line. Each verb lives in its own module with a ``register`` function.

Exit codes (CONTRACT.md): 0 done, 1 failed at run time, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker import __version__
from worker.cli import demo, dlq, embedded, health, references, run, setup
from worker.cli.common import EXIT_CONFIG, EXIT_FAILED
from worker.errors import ConfigError, WorkerError

VERBS = (run, demo, embedded, setup, references, dlq, health)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="worker",
        description=(
            "Face-match worker: matches faces in new S3 uploads against reference photos with "
            "Amazon Rekognition and publishes one SNS result per upload. Settings come from the "
            "environment (or .env); AWS endpoints and credentials from boto3's own variables."
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
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"worker: configuration: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except WorkerError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    return code
