"""The result record (CONTRACT.md), where it lives, and the idempotency decision. Pure.

Exactly-once bookkeeping per upload version rests on the record object itself:

* the record is written with a conditional put (``If-None-Match: *`` for a first record,
  ``If-Match: <old ETag>`` to replace the record of an older upload under the same key), carrying
  S3 metadata ``upload-id`` (version id or eTag of the upload) and ``notified=pending``;
* after the SNS publish, the same body is written again with ``notified=sent`` (``If-Match`` on
  our own write);
* a delivery that finds a ``sent`` record for its upload does nothing; one that finds a
  ``pending`` record waits until the record is older than the publish lease, then publishes that
  stored record itself (the writer died between the write and the publish).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from worker.faces import Candidate

SCHEMA = "face-match-result/1"
# S3 keys are at most 1,024 bytes.
MAX_KEY_BYTES = 1024
LONG_KEY_FOLDER = "_long/"
# How long a record may stay "pending" before another delivery takes over its publish. Longer
# than a live worker can take between writing the record and marking it sent (SNS retries).
PUBLISH_LEASE_SECONDS = 120.0


class Status(StrEnum):
    MATCHED = "matched"
    NO_MATCH = "no_match"
    NO_FACE = "no_face"
    INVALID_IMAGE = "invalid_image"


def result_key(upload_key: str, result_prefix: str) -> str:
    """``results/<upload key>.json``, or ``results/_long/<sha256>.json`` past S3's key limit."""
    key = f"{result_prefix}{upload_key}.json"
    if len(key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(upload_key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{result_prefix}{LONG_KEY_FOLDER}{digest}.json"


def build_record(
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str | None,
    faces_detected: int,
    matches: list[Candidate],
    threshold: float,
    references: int,
    strategy: str,
    duration_ms: int,
    reason: str | None = None,
    invalid: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The contract's record. ``matches`` must already be one per label, best first."""
    if invalid:
        status = Status.INVALID_IMAGE
    elif faces_detected == 0:
        status = Status.NO_FACE
    elif matches:
        status = Status.MATCHED
    else:
        status = Status.NO_MATCH
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "schema": SCHEMA,
        "bucket": bucket,
        "key": key,
        "version_id": version_id,
        "etag": etag,
        "status": status.value,
        "reason": reason,
        "faces_detected": faces_detected,
        "matches": [
            {
                "label": match.label,
                "reference_key": match.reference_key,
                "similarity": round(match.similarity, 1),
                "face": match.face.as_dict(),
            }
            for match in matches
        ],
        "threshold": float(threshold),
        "references": references,
        "strategy": strategy,
        "processed_at": stamp,
        "duration_ms": duration_ms,
    }


@dataclass(frozen=True)
class ExistingRecord:
    """What a HEAD of the record object tells."""

    etag: str
    upload_id: str | None
    sequencer: str | None
    notified: bool
    age_seconds: float


@dataclass(frozen=True)
class Process:
    """Compute and write a record; ``expect_etag`` is the record it replaces, if any."""

    expect_etag: str | None


@dataclass(frozen=True)
class AlreadyDone:
    """This upload's record exists and was published: a duplicate delivery."""


@dataclass(frozen=True)
class Superseded:
    """The record belongs to a newer upload under the same key: this event is stale."""


@dataclass(frozen=True)
class PublishPending:
    """The record exists, its writer died before publishing: publish the stored record."""

    record_etag: str


@dataclass(frozen=True)
class WaitForWriter:
    """Another delivery wrote the record moments ago and is publishing it: come back later."""

    seconds: float


Decision = Process | AlreadyDone | Superseded | PublishPending | WaitForWriter


def decide(
    existing: ExistingRecord | None,
    upload_id: str,
    sequencer: str | None = None,
    lease_seconds: float = PUBLISH_LEASE_SECONDS,
) -> Decision:
    """What to do for one delivery of an upload, given the record found under its result key."""
    if existing is None:
        return Process(expect_etag=None)
    if existing.upload_id != upload_id:
        if sequencer and existing.sequencer and _seq(existing.sequencer) > _seq(sequencer):
            return Superseded()
        return Process(expect_etag=existing.etag)
    if existing.notified:
        return AlreadyDone()
    if existing.age_seconds >= lease_seconds:
        return PublishPending(record_etag=existing.etag)
    return WaitForWriter(seconds=lease_seconds - existing.age_seconds)


def _seq(sequencer: str) -> int:
    """S3 sequencers compare as hexadecimal numbers (of different lengths)."""
    try:
        return int(sequencer, 16)
    except ValueError:
        return -1
