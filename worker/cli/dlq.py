"""`worker dlq list|redrive|purge` — look at, move back and empty the dead-letter queue.

Needs only QUEUE_URL or DLQ_URL: the DLQ is DLQ_URL, else the target of QUEUE_URL's redrive policy.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from worker.aws.clients import make_client
from worker.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, positive_int, printable, start
from worker.ops import dlq
from worker.settings import Settings

_FINDING_THE_DLQ = (
    "The dead-letter queue is DLQ_URL when set, else the deadLetterTargetArn of QUEUE_URL's "
    "redrive policy. Only those two settings are read; AWS endpoints and credentials come from "
    "boto3's own variables."
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dlq",
        help="list, redrive or purge the dead-letter queue",
        description=(
            "Operate the dead-letter queue: messages the worker could never process (with "
            "error_type and error_message attributes) and messages that failed too often "
            "(moved there by the queue's redrive policy). " + _FINDING_THE_DLQ
        ),
    )
    parser.set_defaults(handler=_usage(parser))
    actions = parser.add_subparsers(dest="dlq_action", metavar="ACTION")

    listing = actions.add_parser(
        "list",
        help="show dead-lettered messages without consuming them",
        description=(
            "One line per dead-lettered message — message id, sent time (UTC), receive count, "
            "error_type, error_message, and the S3 objects its body names (s3://bucket/key), "
            "tab-separated — or one JSON object per line with --json. Messages are read with a "
            "short visibility timeout and made visible again before the command ends, so nothing "
            "is consumed; each look adds one to a message's receive count. error_type and "
            "error_message are empty for messages that arrived through the redrive policy. "
            + _FINDING_THE_DLQ
        ),
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument(
        "--limit", type=positive_int, metavar="N", help="show at most N messages (default: all)"
    )
    listing.set_defaults(handler=handle_list)

    moving = actions.add_parser(
        "redrive",
        help="move dead-lettered messages back to the source queue",
        description=(
            "Moves messages back to QUEUE_URL (or, when unset, the dead-letter queue's only source "
            "queue), 10 at a time: each message is sent with its body and attributes (minus "
            "error_type/error_message), then deleted from the dead-letter queue. A crash in "
            "between leaves a duplicate, which the worker's idempotent results absorb; nothing is "
            "lost. Prints how many moved. Exit 1 when some could not be moved. " + _FINDING_THE_DLQ
        ),
    )
    moving.add_argument(
        "--limit", type=positive_int, metavar="N", help="move at most N messages (default: all)"
    )
    moving.set_defaults(handler=handle_redrive)

    purging = actions.add_parser(
        "purge",
        help="delete every message on the dead-letter queue (needs --yes)",
        description=(
            "Deletes every message on the dead-letter queue (SQS PurgeQueue: takes up to 60 s, "
            "once per 60 s per queue). Refuses without --yes. " + _FINDING_THE_DLQ
        ),
    )
    purging.add_argument("--yes", action="store_true", help="really delete them all")
    purging.set_defaults(handler=handle_purge)


def _usage(parser: argparse.ArgumentParser) -> Any:
    def handle(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        print("worker dlq: choose an action: list, redrive or purge", file=sys.stderr)
        return EXIT_CONFIG

    return handle


def _settings_and_dlq() -> tuple[Settings, Any, str]:
    settings = start()
    sqs = make_client("sqs")
    url = dlq.resolve_dlq_url(sqs, dlq_url=settings.dlq_url, queue_url=settings.queue_url)
    return settings, sqs, url


def handle_list(args: argparse.Namespace) -> int:
    _, sqs, url = _settings_and_dlq()
    letters = dlq.peek(sqs, url, limit=args.limit)
    for letter in letters:
        if args.json:
            print(json.dumps(letter.as_json()))
        else:
            print(format_line(letter))
    if not letters:
        print(f"worker dlq: no messages on {url}", file=sys.stderr)
    return EXIT_OK


def format_line(letter: dlq.DeadLetter) -> str:
    """One tab-separated line; tabs, line breaks and other control characters escaped."""
    objects = ", ".join(f"s3://{ref.bucket}/{ref.key}" for ref in letter.objects)
    fields = [
        letter.message_id,
        letter.sent_at or "",
        "" if letter.receive_count is None else str(letter.receive_count),
        letter.error_type,
        letter.error_message,
        objects,
    ]
    return "\t".join(printable(field) for field in fields)


def handle_redrive(args: argparse.Namespace) -> int:
    settings, sqs, url = _settings_and_dlq()
    target = dlq.resolve_source_url(sqs, dlq_url=url, queue_url=settings.queue_url)
    result = dlq.redrive(sqs, url, target, limit=args.limit)
    for error in result.errors:
        print(f"worker dlq redrive: {error}", file=sys.stderr)
    print(f"moved {result.moved} message{'s' if result.moved != 1 else ''} to {target}")
    if result.failed or result.duplicated:
        print(
            f"worker dlq redrive: {result.failed} not sent (still on the dead-letter queue), "
            f"{result.duplicated} sent but not deleted (now on both queues)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def handle_purge(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            "worker dlq purge: refusing to delete every dead-lettered message without --yes "
            "(see them first with `worker dlq list`)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    _, sqs, url = _settings_and_dlq()
    count = dlq.purge(sqs, url)
    print(f"purged {url} (about {count} message{'s' if count != 1 else ''})")
    return EXIT_OK
