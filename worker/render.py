"""What people and machines read: the SNS Subject, the email text, the SNS message. Pure."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

# SNS: Subject at most 100 ASCII characters (we keep 99), message at most 256 KiB.
MAX_SUBJECT_CHARS = 99
MAX_MESSAGE_BYTES = 256 * 1024
# Room kept for message attributes and the JSON envelope around the three texts.
MESSAGE_MARGIN_BYTES = 8 * 1024
ELLIPSIS = "..."
# A label in a Subject is cut here so that the upload's key keeps some room.
MAX_LABEL_CHARS = 40


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


def subject(record: dict[str, Any]) -> str:
    """A Subject SNS always accepts: ≤ 99 printable ASCII characters, never empty.

    Long keys lose their middle (the file name at the end stays readable); long labels are cut.
    """
    key = " ".join(ascii_text(record["key"]).split())
    status = record["status"]
    if status == "matched":
        best = record["matches"][0]
        who = shorten(" ".join(ascii_text(best["label"]).split()), MAX_LABEL_CHARS)
        more = len(record["matches"]) - 1
        head = f"Match: {who} ({best['similarity']:.1f}%)" + (f" +{more}" if more else "") + " in "
    else:
        head = {"no_match": "No match: ", "no_face": "No face: "}.get(status, "Rejected: ")
    text = head + shorten_middle(key, MAX_SUBJECT_CHARS - len(head))
    return text.strip() or "Face match result"


def shorten_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = max(limit - len(ELLIPSIS), 0)
    return text[: keep // 3] + ELLIPSIS + text[len(text) - (keep - keep // 3) :]


def email_text(record: dict[str, Any]) -> str:
    """A short human-readable account of the result."""
    location = f"s3://{record['bucket']}/{record['key']}"
    faces = record["faces_detected"]
    lines: list[str]
    status = record["status"]
    if status == "matched":
        lines = [f"Faces found in {location}: {faces}.", "", "Recognised:"]
        lines += [
            f"  - {m['label']}: {m['similarity']:.1f}% similar (reference {m['reference_key']})"
            for m in record["matches"]
        ]
    elif status == "no_match":
        lines = [
            f"Faces found in {location}: {faces}.",
            f"None matched any of the {record['references']} reference photos "
            f"at {record['threshold']:.0f}% similarity or more.",
        ]
    elif status == "no_face":
        lines = [f"No face was found in {location}."]
    else:
        lines = [f"{location} could not be processed: {record['reason']}."]
    lines += ["", f"Processed at {record['processed_at']} ({record['strategy']} strategy)."]
    return "\n".join(lines)


def sns_message(record: dict[str, Any]) -> str:
    """The ``MessageStructure=json`` message: ``default`` and ``sqs`` carry the record."""
    body = _record_json(record)
    email = email_text(record)
    message = json.dumps({"default": body, "sqs": body, "email": email}, ensure_ascii=False)
    if len(message.encode()) > MAX_MESSAGE_BYTES - MESSAGE_MARGIN_BYTES:
        # Only a pathological number of matches gets here: keep the best ones that fit.
        trimmed = dict(record, matches=record["matches"][:20], matches_truncated=True)
        body = _record_json(trimmed)
        email = shorten(email, 4096)
        message = json.dumps({"default": body, "sqs": body, "email": email}, ensure_ascii=False)
    return message


def message_attributes(record: dict[str, Any]) -> dict[str, Any]:
    """``status`` and ``labels`` for subscription filter policies."""
    labels = [m["label"] for m in record["matches"]]
    return {
        "status": {"DataType": "String", "StringValue": record["status"]},
        "labels": {"DataType": "String.Array", "StringValue": json.dumps(labels)},
    }


def _record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
