"""`worker status [--minutes N] [--json]` — the worker's state at a glance, like Copilot's
`svc status`: queue, dead-letter queue, references, collection, recent results by status.

The age of the dead-letter queue's oldest message: SQS has no such queue attribute
(ApproximateAgeOfOldestMessage is a CloudWatch metric, needing CloudWatch permissions and a minute
of delay). So when the dead-letter queue holds at most :data:`DLQ_PEEK_LIMIT` visible messages,
they are looked at as `worker dlq list` does (nothing consumed: each look adds one to a message's
receive count, and they are hidden for the moment of the look) and the oldest SentTimestamp gives
the age; with more, or with ``--no-dlq-age``, only the count is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.clients import make_client
from worker.aws.errors import translate
from worker.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, positive_int, start
from worker.errors import ConfigError, NotFoundError, WorkerError
from worker.ops import dlq
from worker.ops.results import fetch_all, list_results
from worker.references import list_references
from worker.results import Status
from worker.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType

DEFAULT_MINUTES = 60
# At most this many dead-lettered messages are looked at for the oldest one's age (10 receives).
DLQ_PEEK_LIMIT = 100
_COUNTS: dict[str, QueueAttributeFilterType] = {
    "waiting": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}
_LABEL_WIDTH = 13  # "Dead letters" and two spaces


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="queue depth, in flight, dead letters, references, collection, recent results",
        description=(
            "The worker's state at a glance: the queue's messages (waiting, in flight, delayed), "
            "the dead-letter queue's (and how old the oldest is: read by looking at up to "
            f"{DLQ_PEEK_LIMIT} of them as `worker dlq list` does, which adds one to their receive "
            "count; --no-dlq-age skips it), the reference photos, the Rekognition collection "
            "(COLLECTION_ID: exists? faces indexed), and the results written in the last "
            "--minutes by status. Needs BUCKET_NAME and QUEUE_URL (DLQ_URL, or the queue's "
            "redrive policy, names the dead-letter queue). Exit 0 when every part could be read, "
            "1 when one failed (its line says why), 2 for bad configuration."
        ),
    )
    parser.add_argument(
        "--minutes",
        type=positive_int,
        default=DEFAULT_MINUTES,
        metavar="N",
        help=f"count the results of the last N minutes (default {DEFAULT_MINUTES})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    parser.add_argument(
        "--no-dlq-age",
        dest="dlq_age",
        action="store_false",
        help="do not look at dead-lettered messages for the oldest one's age (count only)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = start("bucket_name", "queue_url")
    sqs = make_client("sqs")
    s3 = make_client("s3")
    rekognition = make_client("rekognition")
    now = datetime.now(UTC)
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "queue": lambda: queue_part(sqs, str(settings.queue_url)),
        "dead_letter_queue": lambda: dlq_part(sqs, settings, now, peek=args.dlq_age),
        "references": lambda: references_part(s3, settings),
        "collection": lambda: collection_part(rekognition, settings),
        "results": lambda: results_part(s3, settings, now, args.minutes),
    }
    report: dict[str, dict[str, Any]] = {}
    code = EXIT_OK
    for name, part in parts.items():
        try:
            report[name] = part()
        except ConfigError as exc:
            report[name] = {"error": "; ".join(exc.problems)}
            code = EXIT_CONFIG
        except WorkerError as exc:
            report[name] = {"error": str(exc)}
            code = max(code, EXIT_FAILED)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print("\n".join(text_lines(report)))
    if code != EXIT_OK:
        for name, part_report in report.items():
            if "error" in part_report:
                print(f"worker status: {name}: {part_report['error']}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- parts


def _translated(call: Callable[[], Any], missing: str) -> Any:
    """``call()``; a missing resource becomes ConfigError(``missing``), other AWS failures the
    worker's errors."""
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError):
            raise ConfigError([missing]) from exc
        raise error from exc


def _counts(sqs: SQSClient, url: str, setting: str) -> dict[str, Any]:
    attributes = _translated(
        lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_COUNTS.values())),
        f"{setting}: queue does not exist: {url}",
    ).get("Attributes", {})
    return {"url": url} | {
        name: int(attributes.get(attribute, 0)) for name, attribute in _COUNTS.items()
    }


def queue_part(sqs: SQSClient, url: str) -> dict[str, Any]:
    return _counts(sqs, url, "QUEUE_URL")


def dlq_part(sqs: SQSClient, settings: Settings, now: datetime, *, peek: bool) -> dict[str, Any]:
    url = dlq.resolve_dlq_url(sqs, dlq_url=settings.dlq_url, queue_url=settings.queue_url)
    counts = _counts(sqs, url, "DLQ_URL")
    part = {"url": url, "messages": counts["waiting"] + counts["in_flight"] + counts["delayed"]}
    oldest = None
    if peek and 0 < counts["waiting"] <= DLQ_PEEK_LIMIT:
        sent = [letter.sent_at for letter in dlq.peek(sqs, url, limit=DLQ_PEEK_LIMIT)]
        oldest = min((moment for moment in sent if moment), default=None)
    part["oldest_sent_at"] = oldest
    part["oldest_age_seconds"] = (
        None if oldest is None else round((now - _parse_time(oldest)).total_seconds(), 1)
    )
    return part


def references_part(s3: Any, settings: Settings) -> dict[str, Any]:
    refs = list_references(s3, settings.bucket, settings.reference_prefix)
    return {
        "location": f"s3://{settings.bucket}/{settings.reference_prefix}",
        "photos": len(refs),
        "labels": len({ref.label for ref in refs}),
    }


def collection_part(rekognition: Any, settings: Settings) -> dict[str, Any]:
    part: dict[str, Any] = {"id": settings.collection_id, "strategy": settings.strategy.value}
    try:
        described = rekognition.describe_collection(CollectionId=settings.collection_id)
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if not isinstance(error, NotFoundError):
            raise error from exc
        return part | {"exists": False, "faces": 0}
    return part | {"exists": True, "faces": int(described.get("FaceCount", 0))}


def results_part(s3: Any, settings: Settings, now: datetime, minutes: int) -> dict[str, Any]:
    stored = list_results(
        s3, settings.bucket, settings.result_prefix, since=now - timedelta(minutes=minutes)
    )
    statuses: Counter[str] = Counter()
    unreadable = 0
    for fetched in fetch_all(s3, settings.bucket, stored):
        if fetched.record is None:
            unreadable += 1
        else:
            statuses[fetched.record.status.value] += 1
    return {
        "minutes": minutes,
        "total": sum(statuses.values()),
        "by_status": {status.value: statuses[status.value] for status in Status},
        "not_records": unreadable,
    }


# --------------------------------------------------------------------------- text


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def age_text(seconds: float) -> str:
    """``45s``, ``3m 12s``, ``2h 5m``, ``3d 4h``."""
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def text_lines(report: dict[str, dict[str, Any]]) -> list[str]:
    """One line per part: what a person reads first."""
    lines = []
    for name, part in report.items():
        title = {"dead_letter_queue": "Dead letters"}.get(name, name.capitalize())
        text = f"error: {part['error']}" if "error" in part else _describe(name, part)
        lines.append(f"{title:<{_LABEL_WIDTH}} {text}")
    return lines


def _describe(name: str, part: dict[str, Any]) -> str:
    if name == "queue":
        return (
            f"{_queue_name(part['url'])}: {part['waiting']} waiting, {part['in_flight']} in "
            f"flight, {part['delayed']} delayed"
        )
    if name == "dead_letter_queue":
        text = f"{_queue_name(part['url'])}: {_plural(part['messages'], 'message')}"
        if part["oldest_age_seconds"] is not None:
            text += f", oldest sent {age_text(part['oldest_age_seconds'])} ago"
        elif part["messages"]:
            text += " (oldest not measured; `worker dlq list` shows them)"
        return text
    if name == "references":
        return (
            f"{_plural(part['photos'], 'photo')} of {_plural(part['labels'], 'label')} "
            f"under {part['location']}"
        )
    if name == "collection":
        state = (
            f"{_plural(part['faces'], 'face')} indexed"
            if part["exists"]
            else "not created yet; `worker references sync` creates it"
        )
        return f"{part['id']} (STRATEGY={part['strategy']}): {state}"
    counted = ", ".join(f"{status} {n}" for status, n in part["by_status"].items() if n)
    text = f"last {part['minutes']} min: {part['total']}" + (f" ({counted})" if counted else "")
    if part["not_records"]:
        text += f", {part['not_records']} objects that are not records"
    return text
