"""Pure parsing of SQS bodies into S3 object references. No I/O.

Three shapes arrive on the queue: an S3 event notification (``{"Records": [...]}``, keys
URL-encoded with ``quote_plus``), the same wrapped in an SNS envelope (``{"Type":
"Notification", "Message": "<json>"}``), and an EventBridge "Object Created" event (keys not
encoded). ``s3:TestEvent`` — sent when a notification is configured — parses to an empty,
``test_event`` message. Anything else raises :class:`BadMessageError` with a reason that ends up in
the dead-letter queue's ``error_message`` attribute — and only that: whatever the body (not JSON,
a 5,000-digit number, nesting deeper than the recursion limit…), :func:`parse_body` raises nothing
else, so a body that is not a usable event is dead-lettered at its first receive.

Records are parsed one by one: in a message of several S3 records, a malformed one becomes a
:class:`RecordProblem` (its own ``{"Records": [record]}`` body and a reason) and the others are
parsed as usual. Only a message where no record is usable raises.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from worker.errors import BadMessageError

# S3 keys are at most 1,024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
# S3 bucket names, loosely (legacy us-east-1 names allow capitals and underscores, up to 255).
BUCKET_NAME = re.compile(r"[A-Za-z0-9._\-]{1,255}")


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object named by an event, key already decoded."""

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    size: int | None = None
    event_name: str = "ObjectCreated"
    # Position in the message's ``Records`` (0 for EventBridge); not part of the object's identity.
    record_index: int = field(default=0, compare=False)

    @property
    def identity(self) -> tuple[str, str, str | None]:
        """What makes two events the same upload: bucket, key and version (or eTag)."""
        return (self.bucket, self.key, self.version_id or self.etag)


@dataclass(frozen=True)
class RecordProblem:
    """One S3 record of a message that can never be processed, with the others still usable."""

    index: int
    reason: str
    body: str  # ``{"Records": [<the record>]}``: what goes to the dead-letter queue on its own


@dataclass(frozen=True)
class ParsedMessage:
    objects: tuple[ObjectRef, ...] = ()
    test_event: bool = False
    envelope: str = "s3"
    removed: tuple[ObjectRef, ...] = field(default=())
    problems: tuple[RecordProblem, ...] = ()
    # A message of several S3 records: each record's own ``{"Records": [record]}`` body, by index
    # (what a record to retry is sent back as when the message is split). Empty otherwise.
    record_bodies: tuple[str, ...] = field(default=(), repr=False)


# A reason naming more bad records than this is cut ("…and N more").
MAX_REASONS = 5


def parse_body(body: str) -> ParsedMessage:
    """Turn one SQS message body into the objects it names; raises only BadMessageError."""
    doc = _loads(body, "body")
    try:
        return _parse_document(doc, envelope="s3", depth=0)
    except BadMessageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a body must never crash the worker, whatever it holds
        raise BadMessageError(f"body could not be parsed: {type(exc).__name__}: {exc}") from None


def _loads(text: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadMessageError(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise BadMessageError(f"{what} is JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer longer than Python's int/str conversion limit
        raise BadMessageError(f"{what} is JSON the worker cannot read: {exc}") from None


def _parse_document(doc: Any, *, envelope: str, depth: int) -> ParsedMessage:
    if depth > 2:
        raise BadMessageError("envelopes nested too deeply")
    if not isinstance(doc, dict):
        raise BadMessageError(f"body is JSON {type(doc).__name__}, expected an object")
    if doc.get("Event") == "s3:TestEvent":
        return ParsedMessage(test_event=True, envelope=envelope)
    if doc.get("Type") == "Notification" and "Message" in doc:
        message = doc["Message"]
        if not isinstance(message, str):
            raise BadMessageError("SNS envelope's Message is not a string")
        inner = _loads(message, "SNS envelope's Message")
        return _parse_document(inner, envelope="sns", depth=depth + 1)
    if "Records" in doc:
        return _parse_s3_records(doc["Records"], envelope=envelope)
    if doc.get("source") == "aws.s3" and "detail" in doc:
        return _parse_eventbridge(doc, envelope="eventbridge" if envelope == "s3" else envelope)
    raise BadMessageError("not an S3 event notification, SNS envelope or EventBridge S3 event")


def _parse_s3_records(records: Any, *, envelope: str) -> ParsedMessage:
    if not isinstance(records, list) or not records:
        raise BadMessageError("Records is empty or not a list")
    created: list[ObjectRef] = []
    removed: list[ObjectRef] = []
    problems: list[RecordProblem] = []
    for index, record in enumerate(records):
        try:
            ref = _parse_s3_record(record, index)
        except BadMessageError as exc:
            problems.append(RecordProblem(index, str(exc), record_body(record)))
            continue
        if "ObjectRemoved" in ref.event_name:
            removed.append(ref)
        elif "ObjectCreated" not in ref.event_name:
            # Other S3 events (restore, replication, lifecycle…) carry nothing for us.
            continue
        else:
            created.append(ref)
    if len(problems) == len(records):  # nothing usable: the message as a whole is bad
        reasons = [p.reason for p in problems[:MAX_REASONS]]
        if len(problems) > MAX_REASONS:
            reasons.append(f"…and {len(problems) - MAX_REASONS} more")
        raise BadMessageError("; ".join(reasons))
    return ParsedMessage(
        objects=tuple(created),
        removed=tuple(removed),
        envelope=envelope,
        problems=tuple(problems),
        record_bodies=tuple(record_body(r) for r in records) if len(records) > 1 else (),
    )


def _parse_s3_record(record: Any, index: int) -> ObjectRef:
    if not isinstance(record, dict):
        raise BadMessageError(f"Records[{index}] is not an object")
    name = str(record.get("eventName", ""))
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError):
        raise BadMessageError(f"Records[{index}] lacks s3.bucket.name or s3.object.key") from None
    if not isinstance(bucket, str) or not isinstance(raw_key, str):
        raise BadMessageError(f"Records[{index}] has a non-string bucket or key")
    return ObjectRef(
        bucket=_checked_bucket(bucket, index),
        key=_checked_key(unquote_plus(raw_key), index),
        etag=_opt_str(obj.get("eTag")),
        version_id=_opt_str(obj.get("versionId")),
        sequencer=_opt_str(obj.get("sequencer")),
        size=_opt_int(obj.get("size")),
        event_name=name or "ObjectCreated",
        record_index=index,
    )


def record_body(record: Any) -> str:
    """An S3 event notification holding ``record`` alone: the body a split message is sent as."""
    return json.dumps({"Records": [record]})


def _parse_eventbridge(doc: dict[str, Any], *, envelope: str) -> ParsedMessage:
    detail_type = doc.get("detail-type")
    try:
        detail = doc["detail"]
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        key = obj["key"]
    except (KeyError, TypeError):
        raise BadMessageError(
            "EventBridge event lacks detail.bucket.name or detail.object.key"
        ) from None
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise BadMessageError("EventBridge event has a non-string bucket or key")
    ref = ObjectRef(
        bucket=_checked_bucket(bucket, 0),
        key=_checked_key(key, 0),  # EventBridge keys are not URL-encoded.
        etag=_opt_str(obj.get("etag")),
        version_id=_opt_str(obj.get("version-id")),
        sequencer=_opt_str(obj.get("sequencer")),
        size=_opt_int(obj.get("size")),
        event_name=str(detail_type),
    )
    if detail_type == "Object Created":
        return ParsedMessage(objects=(ref,), envelope=envelope)
    if detail_type == "Object Deleted":
        return ParsedMessage(removed=(ref,), envelope=envelope)
    return ParsedMessage(envelope=envelope)


def _checked_key(key: str, index: int) -> str:
    if not key:
        raise BadMessageError(f"Records[{index}] has an empty key")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadMessageError(f"Records[{index}] key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise BadMessageError(f"Records[{index}] key is longer than {MAX_KEY_BYTES} bytes")
    return key


def _checked_bucket(bucket: str, index: int) -> str:
    if not BUCKET_NAME.fullmatch(bucket):
        raise BadMessageError(f"Records[{index}] has an invalid bucket name {bucket[:80]!r}")
    return bucket


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
