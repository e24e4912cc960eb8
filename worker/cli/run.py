"""`worker run` — the daemon."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from worker.app import build_pipeline, build_runner
from worker.aws.clients import make_clients
from worker.cli.common import EXIT_OK, start
from worker.ops import readiness
from worker.telemetry.metrics import Metrics


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="long-poll QUEUE_URL, match faces, publish one result per upload",
        description=(
            "The daemon: long-polls QUEUE_URL, matches each upload's faces against the references "
            "under REFERENCE_PREFIX, writes results/<key>.json and publishes one SNS message per "
            "upload. Messages it can never process go to the dead-letter queue (DLQ_URL, or the "
            "queue's redrive target). Before the first poll it checks the queue, the dead-letter "
            "queue, the bucket and the topic (one call each) and exits 2 with one line per one "
            "that is missing or refused. SIGTERM/SIGINT: stop receiving at once, finish or "
            "release in-flight messages within SHUTDOWN_GRACE_SECONDS (25), exit 0; a second "
            "signal exits at once (130/143). Needs BUCKET_NAME, SNS_TOPIC_ARN and QUEUE_URL."
        ),
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = start("bucket_name", "sns_topic_arn", "queue_url", log_level="INFO")
    clients = make_clients()
    ready = readiness.check(settings, clients)  # one line per missing or refused resource: exit 2
    metrics = Metrics()
    pipeline = build_pipeline(settings, clients, metrics)
    runner = build_runner(
        settings, clients, pipeline, ready.dlq_url, max_receive_count=ready.max_receive_count
    )
    runner.install_signal_handlers()
    released = runner.run()
    sys.stdout.flush()
    sys.stderr.flush()
    if released or threading.active_count() > 1:
        # Worker threads may still sit in a call whose message was handed back: don't wait.
        os._exit(EXIT_OK)
    return EXIT_OK
