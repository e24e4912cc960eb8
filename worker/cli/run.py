"""`worker run` — the daemon."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from worker.app import build_pipeline, build_runner
from worker.cli.common import EXIT_OK, start
from worker.clients import make_clients
from worker.dlq import max_receive_count, resolve_dlq_url
from worker.errors import ConfigError
from worker.logs import get_logger
from worker.metrics import Metrics

log = get_logger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="long-poll QUEUE_URL, match faces, publish one result per upload",
        description=(
            "The daemon: long-polls QUEUE_URL, matches each upload's faces against the references "
            "under REFERENCE_PREFIX, writes results/<key>.json and publishes one SNS message per "
            "upload. Messages it can never process go to the dead-letter queue (DLQ_URL, or the "
            "queue's redrive target). SIGTERM/SIGINT: stop receiving, finish or release in-flight "
            "messages within SHUTDOWN_GRACE_SECONDS (25), exit 0. Needs BUCKET_NAME, "
            "SNS_TOPIC_ARN and QUEUE_URL."
        ),
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = start("bucket_name", "sns_topic_arn", "queue_url")
    clients = make_clients()
    try:
        dlq_url: str | None = resolve_dlq_url(
            clients.sqs, dlq_url=settings.dlq_url, queue_url=settings.queue_url
        )
    except ConfigError as exc:
        dlq_url = None
        log.warning("no_dead_letter_queue", problem="; ".join(exc.problems))
    receives = max_receive_count(clients.sqs, str(settings.queue_url))
    metrics = Metrics()
    pipeline = build_pipeline(settings, clients, metrics)
    runner = build_runner(settings, clients, pipeline, dlq_url, max_receive_count=receives)
    runner.install_signal_handlers()
    released = runner.run()
    sys.stdout.flush()
    sys.stderr.flush()
    if released or threading.active_count() > 1:
        # Worker threads may still sit in a call whose message was handed back: don't wait.
        os._exit(EXIT_OK)
    return EXIT_OK
