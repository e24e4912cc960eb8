"""What people and machines read: the SNS Subject, the email text, the SNS message. Pure."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from worker.results import ResultRecord, Status

# SNS Publish, Subject: "must be ASCII text that begins with a letter, number, or punctuation mark;
# must not include line breaks or control characters; and must be less than 100 characters long"
# (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html). We keep 99 printable characters.
MAX_SUBJECT_CHARS = 99
# SNS counts the message *and* its attributes: "All parts of the message attribute, including name,
# type, and value, are included in the message size restriction, which is 256 KiB (262,144 bytes)
# by default" (https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html); "Amazon
# SNS validates the combined size of the message body and message attributes against the topic's
# configured MaximumMessageSize" (https://docs.aws.amazon.com/sns/latest/dg/large-message-payloads.html).
# We count the Subject too, and keep 1 KiB spare for anything the documentation leaves unsaid.
MAX_PUBLISH_BYTES = 262_144
PUBLISH_MARGIN_BYTES = 1024
ELLIPSIS = "..."
# A label in a Subject is cut here so that the upload's key keeps some room.
MAX_LABEL_CHARS = 40
# The e-mail is for people: it names the best matches, the record carries them all.
MAX_EMAIL_MATCHES = 50
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def ascii_text(value: str) -> str:
    """Printable ASCII only: accents folded (é → e), anything else → '?', no line breaks."""
    folded = unicodedata.normalize("NFKD", value)
    out = []
    for char in folded:
        if unicodedata.combining(char):
            continue
        out.append(char if " " <= char <= "~" else "?")
    return "".join(out)


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def subject(record: ResultRecord) -> str:
    """A Subject SNS always accepts: ≤ 99 printable ASCII characters, never empty.

    Long keys lose their middle (the file name at the end stays readable); long labels are cut.
    """
    key = " ".join(ascii_text(record.key).split())
    status = record.status
    if status == Status.MATCHED:
        best = record.matches[0]
        who = shorten(" ".join(ascii_text(best.label).split()), MAX_LABEL_CHARS)
        more = len(record.matches) - 1
        head = f"Match: {who} ({best.similarity:.1f}%)" + (f" +{more}" if more else "") + " in "
    else:
        head = {Status.NO_MATCH: "No match: ", Status.NO_FACE: "No face: "}.get(
            status, "Rejected: "
        )
    text = head + shorten_middle(key, MAX_SUBJECT_CHARS - len(head))
    return text.strip() or "Face match result"


def shorten_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = max(limit - len(ELLIPSIS), 0)
    return text[: keep // 3] + ELLIPSIS + text[len(text) - (keep - keep // 3) :]


def quoted(value: str) -> str:
    """User data for people to read: between double quotes, on one line, nothing invisible.

    Line breaks, tabs, control and format characters (bidi overrides included), separators other
    than the space and unassigned code points become Python-style escapes (``\\n``, ``\\u202e``);
    quotes and backslashes inside are escaped, so the data cannot end the quotes early.
    """
    return '"' + _one_line(value).replace('"', '\\"') + '"'


def _one_line(text: str) -> str:
    """``text`` with every character that is not printable (and a leading combining mark) escaped."""
    return "".join(
        _escape(char)
        if char == "\\" or not char.isprintable() or (not i and unicodedata.combining(char))
        else char
        for i, char in enumerate(text)
    )


def _escape(char: str) -> str:
    """Python's escape of ``char``: ``\\n``, ``\\x85``, ``\\u202e``, ``\\U000e0041``."""
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def summary(record: ResultRecord) -> str:
    """Who matched and how sure (``grace_hopper (99.9%), eileen_collins (91.3%)``), the reason of
    an invalid image, or how many unknown faces: one line for tables, unescaped."""
    if record.matches:
        return ", ".join(f"{m.label} ({m.similarity:.1f}%)" for m in record.matches)
    if record.reason is not None:
        return record.reason
    faces = record.faces_detected
    return f"{faces} face{'s' if faces != 1 else ''}, nobody known" if faces else "-"


def email_text(record: ResultRecord) -> str:
    """A short human-readable account of the result. Keys, labels and reasons cannot add lines."""
    location = quoted(f"s3://{record.bucket}/{record.key}")
    faces = record.faces_detected
    lines: list[str]
    status = record.status
    if status == Status.MATCHED:
        matches = record.matches
        lines = [f"Faces found in {location}: {faces}.", "", "Recognised:"]
        lines += [
            f"  - {quoted(m.label)}: {m.similarity:.1f}% similar "
            f"(reference {quoted(m.reference_key)})"
            for m in matches[:MAX_EMAIL_MATCHES]
        ]
        if len(matches) > MAX_EMAIL_MATCHES:
            lines.append(f"  ... and {len(matches) - MAX_EMAIL_MATCHES} more (see the record).")
        if record.matches_truncated:
            lines.append("  ... and more: the list was cut to fit SNS's message size limit.")
    elif status == Status.NO_MATCH:
        lines = [
            f"Faces found in {location}: {faces}.",
            f"None matched any of the {record.references} reference photos "
            f"at {record.threshold:.0f}% similarity or more.",
        ]
    elif status == Status.NO_FACE:
        lines = [f"No face was found in {location}."]
    else:
        lines = [f"{location} could not be processed: {_one_line(str(record.reason))}."]
    lines += ["", f"Processed at {record.processed_at} ({record.strategy} strategy)."]
    return "\n".join(lines)


@dataclass(frozen=True)
class Publication:
    """The parameters of the one SNS publish per upload (``MessageStructure=json``)."""

    subject: str
    message: str
    attributes: dict[str, Any]

    def size(self) -> int:
        """The bytes SNS counts against its limit: message, attributes (names, types, values)."""
        attributes = sum(
            _utf8_len(name) + _utf8_len(value["DataType"]) + _utf8_len(value["StringValue"])
            for name, value in self.attributes.items()
        )
        return _utf8_len(self.subject) + _utf8_len(self.message) + attributes

    def fits(self) -> bool:
        return self.size() <= MAX_PUBLISH_BYTES - PUBLISH_MARGIN_BYTES


def publication(record: ResultRecord) -> Publication:
    """Subject, message and attributes for ``record``, within SNS's size limit whatever the record.

    ``default`` and ``sqs`` carry the record, ``email`` a text for people. When the whole record
    does not fit, the best matches that fit are kept (the ``labels`` attribute names the same
    ones) and the record says ``"matches_truncated": true``. Without matches a record always fits:
    an S3 key is at most 1,024 bytes.
    """
    title = subject(record)
    count = len(record.matches)
    whole = _publication(record, title, count)
    if whole.fits():
        return whole
    fits, too_many = 0, count  # the size grows with the number of matches kept: bisect
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if _publication(record, title, middle).fits():
            fits = middle
        else:
            too_many = middle
    return _publication(record, title, fits)


def _publication(record: ResultRecord, title: str, kept: int) -> Publication:
    if kept < len(record.matches):
        record = replace(record, matches=record.matches[:kept], matches_truncated=True)
    body = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":"))
    message = {"default": body, "sqs": body, "email": email_text(record)}
    return Publication(title, json.dumps(message, ensure_ascii=False), _attributes(record))


def _attributes(record: ResultRecord) -> dict[str, Any]:
    """``status`` and ``labels`` for subscription filter policies (not delivered to subscribers
    with the JSON message structure; docs/sns-subscribers.md).

    String.Array: "An array, formatted as a string, that can contain multiple values. The values
    can be strings, numbers, or the keywords true, false, and null"; for string types "the value
    attribute has the same restrictions on the content as the message body" (UTF-8), and "Name,
    type, and value must not be empty or null"
    (https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html). So: a JSON array of
    strings, ASCII-escaped (``ensure_ascii``), never an empty string (``[]`` at least).
    """
    labels = [m.label for m in record.matches]
    return {
        "status": {"DataType": "String", "StringValue": record.status.value},
        "labels": {"DataType": "String.Array", "StringValue": json.dumps(labels)},
    }


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
