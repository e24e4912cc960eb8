"""SQS at the edge: its limits as named constants, batched calls with per-entry failures, and the
dead-letter message (body and attributes within SQS's limits). Shared by the runner (which
dead-letters) and the operator's ``worker dlq`` verbs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
    )

T = TypeVar("T")

# SQS limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html).
MAX_BATCH = 10  # entries per *Batch call and messages per ReceiveMessage
MAX_WAIT_SECONDS = 20  # long poll
MAX_VISIBILITY_SECONDS = 12 * 60 * 60
MAX_DELAY_SECONDS = 900  # DelaySeconds of one message (sqs-message-timers.html)
MAX_MESSAGE_BYTES = 256 * 1024  # body and attributes (names, types, values) together
MAX_ATTRIBUTES = 10  # message attributes per message

# The dead-letter reason, as message attributes (CONTRACT.md).
ERROR_TYPE_ATTRIBUTE = "error_type"
ERROR_MESSAGE_ATTRIBUTE = "error_message"
ERROR_ATTRIBUTES = frozenset({ERROR_TYPE_ATTRIBUTE, ERROR_MESSAGE_ATTRIBUTE})
# Longest error_message / error_type we write.
MAX_ERROR_MESSAGE_CHARS = 1000
MAX_ERROR_TYPE_CHARS = 256
# A message's own attributes kept when it is dead-lettered: room for ours, within a budget.
MAX_KEPT_ATTRIBUTES = MAX_ATTRIBUTES - 2
MAX_KEPT_ATTRIBUTE_BYTES = 64 * 1024
# Characters SQS accepts in bodies and attribute values (#x9 | #xA | #xD | #x20-#xD7FF | …).
_INVALID_SQS_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def chunks(items: Sequence[T], size: int = MAX_BATCH) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def batched(
    call: Callable[..., Any],
    queue_url: str,
    items: Sequence[T],
    entry: Callable[[str, T], Any],
) -> list[tuple[T, str]]:
    """Run a ``*Batch`` call over ``items`` in chunks of 10; return (item, reason) of each one
    that failed — a whole chunk when the call itself failed, single entries otherwise."""
    failed: list[tuple[T, str]] = []
    for chunk in chunks(items):
        try:
            answer = call(
                QueueUrl=queue_url, Entries=[entry(str(i), item) for i, item in enumerate(chunk)]
            )
        except (ClientError, BotoCoreError) as exc:
            failed += [(item, str(exc)) for item in chunk]
            continue
        failed += [
            (chunk[int(f["Id"])], f"{f.get('Code')} {f.get('Message', '')}".strip())
            for f in answer.get("Failed", [])
        ]
    return failed


# --------------------------------------------------------------------------- dead-letter message


def send_dead_letter(
    client: SQSClient,
    dlq_url: str,
    body: str,
    error_type: str,
    error_message: str,
    *,
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef] | None = None,
) -> str:
    """Put ``body`` on the dead-letter queue with its reason (:func:`dead_letter_payload`);
    return the new message id. botocore's errors propagate."""
    body, out = dead_letter_payload(body, error_type, error_message, attributes)
    return client.send_message(QueueUrl=dlq_url, MessageBody=body, MessageAttributes=out)[
        "MessageId"
    ]


def kept_attributes(
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef | MessageAttributeValueTypeDef],
) -> dict[str, MessageAttributeValueTypeDef]:
    """A received message's attributes, ready to send again, without ``error_type``/``error_message``."""
    kept: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in attributes.items():
        if name in ERROR_ATTRIBUTES:
            continue
        copy: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
        if "StringValue" in value:
            copy["StringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            copy["BinaryValue"] = value["BinaryValue"]
        kept[name] = copy
    return kept


def dead_letter_payload(
    body: str,
    error_type: str,
    error_message: str,
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef] | None = None,
) -> tuple[str, dict[str, MessageAttributeValueTypeDef]]:
    """The body and attributes of a dead-lettered message, within SQS's limits. Pure.

    The reason is cleaned of characters SQS refuses and cut to :data:`MAX_ERROR_MESSAGE_CHARS`;
    if body and attributes would pass :data:`MAX_MESSAGE_BYTES`, the reason is shortened further
    and, only when even the body alone cannot fit, the body is cut (and the reason says so).
    The message's own ``attributes`` are kept, ours replacing any ``error_type``/``error_message``
    it had: at most :data:`MAX_KEPT_ATTRIBUTES` (8) of them — the first by name, within
    :data:`MAX_KEPT_ATTRIBUTE_BYTES` — and ``error_message`` names those left out.
    """
    body = _sqs_text(body) or "(empty body)"  # SQS refuses an empty body
    kind = _sqs_text(error_type)[:MAX_ERROR_TYPE_CHARS] or "Unknown"
    own = kept_attributes(attributes or {})
    kept: dict[str, MessageAttributeValueTypeDef] = {}
    dropped: list[str] = []
    kept_bytes = 0
    for name in sorted(own):
        size = _attribute_len(name, own[name])
        if len(kept) < MAX_KEPT_ATTRIBUTES and kept_bytes + size <= MAX_KEPT_ATTRIBUTE_BYTES:
            kept[name] = own[name]
            kept_bytes += size
        else:
            dropped.append(name)
    note = f" (message attributes not kept: {', '.join(dropped)})"[:300] if dropped else ""
    reason = _sqs_text(error_message)[: MAX_ERROR_MESSAGE_CHARS - len(note)] + note
    # Size SQS counts: body + each attribute's name, type and value, all as UTF-8.
    fixed = (
        len(ERROR_TYPE_ATTRIBUTE) + len("String") + _utf8_len(kind)
        + len(ERROR_MESSAGE_ATTRIBUTE) + len("String") + kept_bytes
    )  # fmt: skip
    room = MAX_MESSAGE_BYTES - fixed - _utf8_len(body)
    if room < _utf8_len(reason):
        if room >= 200:  # keep a useful reason when there is room for one
            reason = _cut_utf8(reason, room)
        else:
            original = _utf8_len(body)
            reason = _cut_utf8(reason, 150) + f" (body cut from {original} bytes)"
            body = _cut_utf8(body, MAX_MESSAGE_BYTES - fixed - _utf8_len(reason))
    out: dict[str, MessageAttributeValueTypeDef] = {
        **kept,
        ERROR_TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": kind},
    }
    if reason:  # SQS refuses an empty attribute value; absent reads as empty
        out[ERROR_MESSAGE_ATTRIBUTE] = {"DataType": "String", "StringValue": reason}
    return body, out


def _attribute_len(name: str, value: MessageAttributeValueTypeDef) -> int:
    """Bytes SQS counts for one attribute: name, data type and value."""
    size = _utf8_len(name) + _utf8_len(value["DataType"])
    if "StringValue" in value:
        size += _utf8_len(value["StringValue"])
    if "BinaryValue" in value:
        size += len(value["BinaryValue"])  # type: ignore[arg-type]
    return size


def _sqs_text(text: str) -> str:
    return _INVALID_SQS_CHARS.sub("\ufffd", text)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, never inside a character."""
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", "ignore")
