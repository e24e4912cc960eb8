"""Dead-letter queue operations (boto3 edge): find the DLQ, look at it, move it back, empty it,
and dead-letter a message the worker can never process.

Every function takes an SQS client; nothing here reads settings. ``ClientError`` and botocore's
connection errors are translated into the worker's error tree, so the CLI never shows a traceback.

``list`` must not consume: SQS has no "peek", so messages are received with a short visibility
timeout (long enough that a scan never sees the same message twice) and every one of them is made
visible again with ``ChangeMessageVisibilityBatch`` (visibility 0) before the function returns. A
side effect SQS gives us no way around: each look adds one to a message's receive count.

``redrive`` is send-then-delete (moto has no ``StartMessageMoveTask``): a crash in between leaves a
duplicate on the source queue — which the result records' conditional write absorbs — never a loss.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws import sqs as sqs_edge
from worker.aws.errors import translate
from worker.aws.sqs import (
    ERROR_MESSAGE_ATTRIBUTE,
    ERROR_TYPE_ATTRIBUTE,
    MAX_BATCH,
    kept_attributes,
)
from worker.errors import BadMessageError, ConfigError, NotFoundError
from worker.events import ObjectRef, parse_body

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

# How long a message stays hidden while `list` scans or `redrive` moves it (seconds).
# Long enough that one scan never receives the same message twice.
SCAN_VISIBILITY_SECONDS = 30
MOVE_VISIBILITY_SECONDS = 60
# When a short poll finds nothing but SQS still counts visible messages, one long poll of this
# many seconds asks every SQS server, so "empty" means "nothing left", not "unlucky sample".
RECEIVE_WAIT_SECONDS = 1


@dataclass(frozen=True)
class DeadLetter:
    """One message on the dead-letter queue, as ``worker dlq list`` shows it."""

    message_id: str
    sent_at: str | None  # ISO-8601 UTC, from SentTimestamp
    receive_count: int | None  # ApproximateReceiveCount, this look included
    error_type: str  # empty when the message came through the redrive policy
    error_message: str
    objects: tuple[ObjectRef, ...] = ()
    parse_error: str | None = None  # why the body names no object, when it does not parse

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "sent_at": self.sent_at,
            "receive_count": self.receive_count,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "objects": [
                {
                    "bucket": ref.bucket,
                    "key": ref.key,
                    "version_id": ref.version_id,
                    "etag": ref.etag,
                }
                for ref in self.objects
            ],
            "parse_error": self.parse_error,
        }


@dataclass(frozen=True)
class RedriveResult:
    moved: int = 0
    failed: int = 0  # could not be sent: still on the dead-letter queue
    duplicated: int = 0  # sent but not deleted: on both queues
    errors: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- finding the queues


def resolve_dlq_url(sqs: SQSClient, *, dlq_url: str | None, queue_url: str | None) -> str:
    """``dlq_url`` when given, else the dead-letter target of ``queue_url``'s redrive policy."""
    if dlq_url:
        return dlq_url
    if not queue_url:
        raise ConfigError(
            ["DLQ_URL: not set, and QUEUE_URL (whose redrive policy names it) is not set either"]
        )
    with _translated("GetQueueAttributes", queue_url=queue_url, setting="QUEUE_URL"):
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    return dead_letter_target_url(sqs, attrs.get("Attributes", {}).get("RedrivePolicy"))


def dead_letter_target_url(sqs: SQSClient, raw_policy: str | None) -> str:
    """The URL of the queue a ``RedrivePolicy`` attribute names (one GetQueueUrl call)."""
    if not raw_policy:
        raise ConfigError(["DLQ_URL: not set, and QUEUE_URL's queue has no redrive policy"])
    try:
        arn = json.loads(raw_policy)["deadLetterTargetArn"]
        _, _, _, _region, account, name = arn.split(":", 5)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(
            [f"DLQ_URL: not set, and QUEUE_URL's redrive policy is unreadable: {raw_policy!r}"]
        ) from None
    with _translated("GetQueueUrl", queue_url=arn, setting="DLQ_URL"):
        return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def receive_limit(raw_policy: str | None) -> int | None:
    """``maxReceiveCount`` of a ``RedrivePolicy`` attribute; None without a readable one."""
    try:
        return int(json.loads(raw_policy or "")["maxReceiveCount"])
    except (KeyError, ValueError, TypeError):
        return None


def resolve_source_url(sqs: SQSClient, *, dlq_url: str, queue_url: str | None) -> str:
    """Where ``redrive`` sends messages: ``queue_url``, else the DLQ's only source queue."""
    if queue_url:
        return queue_url
    with _translated("ListDeadLetterSourceQueues", queue_url=dlq_url, setting="DLQ_URL"):
        sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) == 1:
        return sources[0]
    found = "no source queue" if not sources else f"{len(sources)} source queues"
    raise ConfigError([f"QUEUE_URL: not set, and the dead-letter queue has {found}"])


# --------------------------------------------------------------------------- list


def peek(
    sqs: SQSClient,
    dlq_url: str,
    *,
    limit: int | None = None,
    wait_seconds: int = RECEIVE_WAIT_SECONDS,
) -> list[DeadLetter]:
    """The messages on ``dlq_url`` (at most ``limit``), left on the queue and visible."""
    seen: dict[str, DeadLetter] = {}
    handles: dict[str, str] = {}  # message id -> latest receipt handle (only the latest counts)
    try:
        while limit is None or len(seen) < limit:
            wanted = MAX_BATCH if limit is None else min(MAX_BATCH, limit - len(seen))
            batch = _receive(sqs, dlq_url, wanted, SCAN_VISIBILITY_SECONDS, wait_seconds)
            fresh = 0
            for message in batch:
                message_id = message.get("MessageId", "")
                handles[message_id] = message.get("ReceiptHandle", "")
                if message_id not in seen:
                    seen[message_id] = describe(message)
                    fresh += 1
            if not fresh:
                break
    finally:
        _release(sqs, dlq_url, handles)
    return list(seen.values())


def describe(message: MessageTypeDef) -> DeadLetter:
    """What ``list`` shows of one received message. Never raises on a strange body."""
    attributes = message.get("Attributes", {})
    user = message.get("MessageAttributes", {})
    objects: tuple[ObjectRef, ...] = ()
    parse_error = None
    try:
        objects = parse_body(message.get("Body", "")).objects
    except BadMessageError as exc:
        parse_error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a listing must show every message, whatever its body
        parse_error = f"{type(exc).__name__}: {exc}"
    return DeadLetter(
        message_id=message.get("MessageId", ""),
        sent_at=iso_timestamp(attributes.get("SentTimestamp")),
        receive_count=_opt_int(attributes.get("ApproximateReceiveCount")),
        error_type=_string_attribute(user, ERROR_TYPE_ATTRIBUTE),
        error_message=_string_attribute(user, ERROR_MESSAGE_ATTRIBUTE),
        objects=objects,
        parse_error=parse_error,
    )


def _string_attribute(
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef], name: str
) -> str:
    value = attributes.get(name)
    return value.get("StringValue", "") if value is not None else ""


def iso_timestamp(millis: str | None) -> str | None:
    """SQS's epoch-milliseconds attribute as ``2026-11-26T22:00:00Z``; None when absent or odd."""
    value = _opt_int(millis)
    if value is None:
        return None
    try:
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- redrive


def redrive(
    sqs: SQSClient,
    dlq_url: str,
    target_url: str,
    *,
    limit: int | None = None,
    wait_seconds: int = RECEIVE_WAIT_SECONDS,
) -> RedriveResult:
    """Move messages from ``dlq_url`` to ``target_url``: send a copy, then delete what was sent.

    The copy keeps the body and the message attributes except ``error_type``/``error_message``.
    Messages that could not be sent stay on the dead-letter queue and are made visible again.
    """
    if dlq_url == target_url:
        raise ConfigError(["QUEUE_URL: is the dead-letter queue itself; nothing to redrive"])
    moved = duplicated = 0
    errors: list[str] = []
    unsent: dict[str, str] = {}  # message id -> receipt handle, made visible again at the end
    try:
        while limit is None or moved + len(unsent) < limit:
            wanted = MAX_BATCH if limit is None else min(MAX_BATCH, limit - moved - len(unsent))
            batch = [
                m
                for m in _receive(sqs, dlq_url, wanted, MOVE_VISIBILITY_SECONDS, wait_seconds)
                if m.get("MessageId", "") not in unsent
            ]
            if not batch:
                break
            by_id = {str(index): message for index, message in enumerate(batch)}
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": entry_id,
                    "MessageBody": message.get("Body", ""),
                    "MessageAttributes": kept_attributes(message.get("MessageAttributes", {})),
                }
                for entry_id, message in by_id.items()
            ]
            with _translated("SendMessageBatch", queue_url=target_url, setting="QUEUE_URL"):
                sent = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
            for failure in sent.get("Failed", []):
                message = by_id[failure["Id"]]
                unsent[message.get("MessageId", "")] = message.get("ReceiptHandle", "")
                errors.append(
                    f"{message.get('MessageId')}: not sent: {failure.get('Code')} "
                    f"{failure.get('Message', '')}".rstrip()
                )
            done = [by_id[ok["Id"]] for ok in sent.get("Successful", [])]
            not_deleted = _delete(sqs, dlq_url, done)
            moved += len(done) - len(not_deleted)
            duplicated += len(not_deleted)
            errors.extend(f"{mid}: sent but not deleted: {why}" for mid, why in not_deleted)
    finally:
        _release(sqs, dlq_url, unsent)
    return RedriveResult(
        moved=moved, failed=len(unsent), duplicated=duplicated, errors=tuple(errors)
    )


def _delete(
    sqs: SQSClient, queue_url: str, messages: Sequence[MessageTypeDef]
) -> list[tuple[str, str]]:
    """Delete ``messages`` in batches; return (message id, reason) of each one not deleted."""
    failed: list[tuple[str, str]] = []
    for start in range(0, len(messages), MAX_BATCH):
        chunk = {str(i): m for i, m in enumerate(messages[start : start + MAX_BATCH])}
        with _translated("DeleteMessageBatch", queue_url=queue_url, setting="DLQ_URL"):
            answer = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": entry_id, "ReceiptHandle": m.get("ReceiptHandle", "")}
                    for entry_id, m in chunk.items()
                ],
            )
        failed.extend(
            (chunk[f["Id"]].get("MessageId", ""), f"{f.get('Code')} {f.get('Message', '')}".strip())
            for f in answer.get("Failed", [])
        )
    return failed


# --------------------------------------------------------------------------- purge


def purge(sqs: SQSClient, dlq_url: str) -> int:
    """Empty the dead-letter queue; return how many messages SQS counted on it just before."""
    with _translated("GetQueueAttributes", queue_url=dlq_url, setting="DLQ_URL"):
        attrs = sqs.get_queue_attributes(
            QueueUrl=dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ).get("Attributes", {})
    count = sum(
        _opt_int(attrs.get(name)) or 0
        for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    )
    with _translated("PurgeQueue", queue_url=dlq_url, setting="DLQ_URL"):
        sqs.purge_queue(QueueUrl=dlq_url)
    return count


# --------------------------------------------------------------------------- dead-lettering


def send_to_dlq(
    sqs: SQSClient,
    dlq_url: str,
    body: str,
    error_type: str,
    error_message: str,
    *,
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef] | None = None,
) -> str:
    """:func:`worker.aws.sqs.send_dead_letter`, its errors translated for the command line."""
    with _translated("SendMessage", queue_url=dlq_url, setting="DLQ_URL"):
        return sqs_edge.send_dead_letter(
            sqs, dlq_url, body, error_type, error_message, attributes=attributes
        )


# --------------------------------------------------------------------------- shared SQS edge


def _receive(
    sqs: SQSClient, queue_url: str, count: int, visibility: int, wait_seconds: int
) -> list[MessageTypeDef]:
    """Up to ``count`` messages; empty only when the queue has nothing visible left.

    A short poll first (fast, but it samples only some SQS servers); when it comes back empty
    while SQS still counts visible messages, one long poll of ``wait_seconds`` asks them all.
    """
    messages = _receive_once(sqs, queue_url, count, visibility, 0)
    if messages or not wait_seconds:
        return messages
    with _translated("GetQueueAttributes", queue_url=queue_url, setting="DLQ_URL"):
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        ).get("Attributes", {})
    if not _opt_int(attrs.get("ApproximateNumberOfMessages")):
        return []
    return _receive_once(sqs, queue_url, count, visibility, wait_seconds)


def _receive_once(
    sqs: SQSClient, queue_url: str, count: int, visibility: int, wait_seconds: int
) -> list[MessageTypeDef]:
    with _translated("ReceiveMessage", queue_url=queue_url, setting="DLQ_URL"):
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
    return answer.get("Messages", [])


def _release(sqs: SQSClient, queue_url: str, handles: Mapping[str, str]) -> None:
    """Make the received messages visible again (visibility 0), in batches of 10."""
    items = [(mid, handle) for mid, handle in handles.items() if handle]
    for start in range(0, len(items), MAX_BATCH):
        chunk = items[start : start + MAX_BATCH]
        with _translated("ChangeMessageVisibilityBatch", queue_url=queue_url, setting="DLQ_URL"):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for i, (_, handle) in enumerate(chunk)
                ],
            )


@contextmanager
def _translated(action: str, *, queue_url: str, setting: str) -> Iterator[None]:
    """botocore's errors → the worker's: a missing queue is configuration (exit 2), the rest run time."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError):
            raise ConfigError([f"{setting}: queue does not exist: {queue_url}"]) from exc
        raise type(error)(f"SQS {action} on {queue_url} failed: {error}", code=error.code) from exc


def _opt_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
