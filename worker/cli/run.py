"""`worker run` — the daemon."""

from __future__ import annotations

import argparse
from typing import Any

from worker.cli.common import EXIT_FAILED, start


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="long-poll QUEUE_URL, match faces, publish one result per upload",
        description=(
            "The daemon: long-polls QUEUE_URL, matches each upload's faces against the references "
            "under REFERENCE_PREFIX, writes results/<key>.json and publishes one SNS message per "
            "upload. SIGTERM/SIGINT: stop receiving, finish or release in-flight messages, exit 0."
        ),
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    start("bucket_name", "sns_topic_arn", "queue_url")
    return EXIT_FAILED
