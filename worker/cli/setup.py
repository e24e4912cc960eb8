"""`worker setup` — the tutorial's manual wiring as one idempotent command (worker.ops.provision)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.aws.clients import make_client
from worker.cli.common import EXIT_OK, export_lines, start
from worker.ops.provision import provision
from worker.ops.wiring import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS, plan
from worker.telemetry.logs import get_logger

log = get_logger(__name__)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "setup",
        help="create or verify bucket, queue + DLQ, queue policy, notification, topic; print exports",
        description=(
            "Creates or verifies, wherever boto3 points (AWS_REGION, AWS_ENDPOINT_URL, …): the "
            "bucket; a dead-letter queue; the queue with a redrive policy to it; a queue policy "
            "that lets only this bucket of this account send; the bucket notification "
            "(ObjectCreated under the upload prefix, created/removed under the reference "
            "prefix → queue), merged with the bucket's other notifications; the results topic; "
            "optional e-mail subscriptions. Idempotent: a second run changes nothing. Prints "
            'export lines for `worker run` on stdout: eval "$(worker setup --bucket NAME)".'
        ),
    )
    parser.add_argument("--bucket", required=True, help="bucket name (created when missing)")
    parser.add_argument(
        "--email",
        action="append",
        default=[],
        metavar="ADDR",
        help="subscribe ADDR to the results topic by e-mail (repeatable; ADDR must confirm)",
    )
    parser.add_argument(
        "--queue-name", help="upload queue name (default <bucket>-uploads; DLQ: <queue>-dlq)"
    )
    parser.add_argument("--topic-name", help="results topic name (default <bucket>-results)")
    parser.add_argument(
        "--reference-prefix",
        help="reference faces prefix (default REFERENCE_PREFIX or references/)",
    )
    parser.add_argument(
        "--upload-prefix", help="prefix of uploads to process (default UPLOAD_PREFIX or uploads/)"
    )
    parser.add_argument(
        "--max-receive-count",
        type=_bounded(1, 1000),
        default=MAX_RECEIVE_COUNT,
        metavar="N",
        help=f"receives before a message goes to the DLQ (default {MAX_RECEIVE_COUNT})",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=_bounded(0, 43200),
        default=VISIBILITY_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"queue visibility timeout (default {VISIBILITY_TIMEOUT_SECONDS})",
    )
    parser.add_argument(
        "--policy-file",
        metavar="PATH",
        help="also write the IAM policy `worker run` needs on these resources to PATH (JSON)",
    )
    parser.set_defaults(handler=handle)


def _prefix(value: str | None, default: str) -> str:
    if value is None:
        return default
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else f"{value}/"


def handle(args: argparse.Namespace) -> int:
    settings = start()
    request = plan(
        args.bucket,
        queue_name=args.queue_name,
        topic_name=args.topic_name,
        emails=args.email,
        reference_prefix=_prefix(args.reference_prefix, settings.reference_prefix),
        upload_prefix=_prefix(args.upload_prefix, settings.upload_prefix),
        result_prefix=settings.result_prefix,
        max_receive_count=args.max_receive_count,
        visibility_timeout_seconds=args.visibility_timeout,
        collection_id=settings.collection_id,
    )
    sqs = make_client("sqs")  # no region: one line, exit 2 (worker.cli.report)
    # The queue's region: S3 sends notifications only to a queue in the bucket's region.
    region = str(sqs.meta.region_name)
    done = provision(
        request,
        s3=make_client("s3"),
        sqs=sqs,
        sns=make_client("sns"),
        sts=make_client("sts"),
        region=region,
    )
    log.info(
        "setup_done",
        changes=done.changes or ["nothing: everything was already in place"],
        bucket=done.bucket,
        queue_url=done.queue_url,
    )
    if args.policy_file:
        Path(args.policy_file).write_text(json.dumps(done.worker_policy, indent=2) + "\n")
        log.info("worker_policy_written", path=args.policy_file)
    sys.stdout.write(export_lines(done.exports()))
    sys.stdout.flush()
    return EXIT_OK
