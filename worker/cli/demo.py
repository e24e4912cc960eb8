"""`worker demo` — the whole pipeline on this machine: embedded AWS, local face engine, samples.

The logic is in :mod:`worker.demo`; this module is the verb's options, output and exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from worker.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from worker.errors import ConfigError, WorkerError

# 128 + SIGINT, as the shell reports it (and worker.cli.main for other verbs).
EXIT_INTERRUPTED = 130

DESCRIPTION = (
    "Runs the whole pipeline on this machine with no AWS account and no network. Starts the "
    "embedded AWS in this process (moto's S3, SQS and SNS and the local face engine behind the "
    "Rekognition API, on a free loopback port) and points boto3 at it through its environment "
    "variables only; creates the bucket, queue, dead-letter queue, bucket notification and topic "
    "as `worker setup` does, and subscribes a results queue to the topic; uploads two reference "
    "faces (Eileen Collins and Grace Hopper: public-domain portraits shipped in scikit-image and "
    "matplotlib) and six uploads derived from them (a crop, a smaller copy, a tilted copy, both "
    "people in one picture, a picture with no face, a text file named .jpg); runs the real worker "
    "until every upload's result has been published, and prints one line per upload: key, status, "
    "who matched and how sure (or why not). Exit 0 when every upload has its result, 1 when not "
    "(see --timeout), 2 when the `local`/`demo` extras are missing. Logs go to stderr "
    "(LOG_FORMAT=console, WARNING unless --verbose)."
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="the whole pipeline on this machine: embedded AWS, local face engine, sample photos",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="give up (exit 1) when results are missing after this long (default 120)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the worker's INFO logs on stderr"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from worker import demo  # noqa: PLC0415 - imports the worker stack only when asked for

    missing = demo.missing_modules()
    if missing:
        print(
            f"worker demo: needs the 'local' and 'demo' extras ({', '.join(missing)} missing): "
            f"{demo.INSTALL_HINT}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from worker.samples import SamplesUnavailable  # noqa: PLC0415

    code = EXIT_OK
    try:
        results = demo.run_demo(timeout=args.timeout, verbose=args.verbose)
    except SamplesUnavailable as exc:
        print(f"worker demo: {exc}: {demo.INSTALL_HINT}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError:
        raise  # one line per bad variable, exit 2 (worker.cli.main)
    except WorkerError as exc:
        print(f"worker demo: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    else:
        for line in demo.format_results(results):
            print(line)
    sys.stdout.flush()
    sys.stderr.flush()
    if threading.active_count() > 1:
        # The stopped worker's pool threads (idle, or stuck in a call to the embedded AWS that
        # is gone): nothing left to wait for.
        os._exit(code)
    return code
