"""`worker demo` — the whole pipeline on this machine: embedded AWS, local face engine, samples.

The logic is in :mod:`worker.local.demo`; this module is the verb's options, output and exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path
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
    "matplotlib) and seven uploads (a crop, a smaller copy, a tilted copy, both people in one "
    "picture, a picture with no face, a stranger's face from scikit-image's lfw_subset, a text "
    "file named .jpg); runs the real worker until every upload's result has been published, and "
    "prints one line per upload as its result arrives: [done/total], key, status, who matched and "
    "how sure (or why not). Each image upload is also drawn, with its matched faces' boxes, "
    "labels and similarities, into a folder (--annotate DIR, else a new temporary folder) named "
    "on the last line. Exit 0 when every upload has its result, 1 when not (see --timeout), 2 "
    "when the `local`/`demo` extras are missing or DIR cannot be made. Logs go to stderr "
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
        "--annotate",
        type=Path,
        metavar="DIR",
        help="write the pictures with the matched faces drawn here (default: a new temporary folder)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the worker's INFO logs on stderr"
    )
    parser.set_defaults(handler=handle)


def picture_folder(chosen: Path | None) -> Path:
    """``chosen`` (created when missing), else a new temporary folder. OSError when impossible."""
    if chosen is None:
        return Path(tempfile.mkdtemp(prefix="worker-demo-"))
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


def handle(args: argparse.Namespace) -> int:
    try:
        from worker.local import demo  # noqa: PLC0415 - imports the worker stack only when asked for
    except ModuleNotFoundError:  # the production image leaves the local stack out
        print(
            "worker demo: the local stack is not installed here (the production image has none): "
            "pip install 'face-match-worker[local,demo]'",
            file=sys.stderr,
        )
        return EXIT_CONFIG

    missing = demo.missing_modules()
    if missing:
        print(
            f"worker demo: needs the 'local' and 'demo' extras ({', '.join(missing)} missing): "
            f"{demo.INSTALL_HINT}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from worker.local.samples import SamplesUnavailable  # noqa: PLC0415

    try:
        pictures = picture_folder(args.annotate)
    except OSError as exc:
        print(f"worker demo: cannot make {args.annotate}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    code = EXIT_OK
    try:
        results = demo.run_demo(
            timeout=args.timeout,
            verbose=args.verbose,
            on_result=lambda arrival: print(arrival.line(), flush=True),
            pictures=pictures,
        )
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
        drawn = sum(result.picture is not None for result in results)
        print(f"Pictures with the matched faces drawn: {pictures} ({drawn} files)")
    sys.stdout.flush()
    sys.stderr.flush()
    if threading.active_count() > 1:
        # The stopped worker's pool threads (idle, or stuck in a call to the embedded AWS that
        # is gone): nothing left to wait for.
        os._exit(code)
    return code
