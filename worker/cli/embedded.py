"""`worker embedded` — serve the embedded AWS (moto's S3, SQS, SNS and the local face engine
behind the Rekognition API) on one loopback endpoint, in the foreground.

Prints the ``export`` lines first (flushed), then serves until SIGINT or SIGTERM and exits 0.

``--services rekognition`` serves the local face engine alone, beside any S3: it reads
``S3Object`` images through the S3 the environment points at (``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, e.g. LocalStack) and prints only ``AWS_ENDPOINT_URL_REKOGNITION``.

The process first bounds glibc's malloc (fixed mmap threshold, 2 arenas; see
:mod:`worker.local.malloc`), which keeps its RSS from climbing with every new image;
``--default-malloc`` leaves glibc's defaults, for measuring.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from worker.cli.common import EXIT_FAILED, EXIT_OK, export_lines, start
from worker.telemetry.logs import get_logger

# LocalStack's edge port: the endpoint is stable across runs unless --port says otherwise.
DEFAULT_PORT = 4566
SERVICES = ("all", "rekognition")

log = get_logger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "embedded",
        help="serve S3, SQS, SNS and a local Rekognition on one loopback endpoint",
        description=(
            "Serve the embedded AWS in the foreground: moto's S3, SQS and SNS and the local face "
            "engine behind the Rekognition API, all on one endpoint. Prints the export lines that "
            "point boto3, the AWS CLI and `worker run` at it, then serves until SIGINT/SIGTERM. "
            "State lives in memory and is gone when it stops."
        ),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    parser.add_argument(
        "--services",
        choices=SERVICES,
        default="all",
        help=(
            "all (default): moto's S3, SQS, SNS, … and the face engine; rekognition: the face "
            "engine alone, reading S3Object images from the S3 that AWS_ENDPOINT_URL_S3 / "
            "AWS_ENDPOINT_URL (or AWS itself) provide"
        ),
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help=(
            "keep glibc's malloc defaults (dynamic mmap threshold, an arena per thread) instead "
            "of the bounded settings that keep RSS from growing with every new image; for "
            "measuring (bench/engine_memory.py)"
        ),
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    start(log_level="INFO")
    try:
        from worker.local.engine.server import EmbeddedAWS  # noqa: PLC0415 - needs the local extra
        from worker.local.malloc import bound_malloc  # noqa: PLC0415 - with the engine
    except ImportError as exc:
        print(
            f"worker embedded: needs the 'local' extra (pip install 'face-match-worker[local]'): {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not args.default_malloc:
        log.info("embedded.malloc", bounded=bound_malloc())
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    aws = EmbeddedAWS(
        port=args.port, host=args.host, rekognition_only=args.services == "rekognition"
    )
    try:
        try:
            aws.start()
        except OSError as exc:
            print(
                f"worker embedded: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
            )
            return EXIT_FAILED
        sys.stdout.write(export_lines(aws.environment().items()))
        sys.stdout.flush()
        stopping.wait()
        return EXIT_OK
    finally:
        aws.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
