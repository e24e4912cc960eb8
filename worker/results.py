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
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from worker.faces import Box, Candidate

SCHEMA = "face-match-result/1"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
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
    matches: Iterable[Candidate],
    threshold: float,
    references: int,
    strategy: str,
    duration_ms: int,
    reason: str | None = None,
    invalid: bool = False,
    now: datetime | None = None,
) -> ResultRecord:
    """The contract's record. ``matches`` must already be one per label, best first.

    ``invalid`` and ``reason`` go together: the reason is what makes a record ``invalid_image``.
    """
    if invalid != (reason is not None):
        raise ValueError("an invalid image has a reason, and only an invalid image has one")
    return ResultRecord(
        # the upload
        bucket=bucket,
        key=key,
        version_id=version_id,
        etag=etag,
        # how it was compared
        threshold=float(threshold),
        references=references,
        strategy=strategy,
        # what was found
        faces_detected=faces_detected,
        matches=tuple(Match.of(candidate) for candidate in matches),
        reason=reason,
        processed_at=(now or datetime.now(UTC)).strftime(TIMESTAMP_FORMAT),
        duration_ms=duration_ms,
    )


@dataclass(frozen=True)
class Match:
    """One recognised label in a record: its best reference, similarity rounded to 0.1."""

    label: str
    reference_key: str
    similarity: float
    face: Box

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "reference_key": self.reference_key,
            "similarity": self.similarity,
            "face": self.face.to_json(),
        }

    @classmethod
    def of(cls, candidate: Candidate) -> Match:
        """The match as recorded: similarity to 0.1, the box to the 4 decimals written."""
        return cls(
            label=candidate.label,
            reference_key=candidate.reference_key,
            similarity=round(candidate.similarity, 1),
            face=candidate.face.rounded(),
        )

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Match:
        return cls(
            label=str(doc["label"]),
            reference_key=str(doc["reference_key"]),
            similarity=float(doc["similarity"]),
            face=Box.from_json(doc["face"]),
        )


@dataclass(frozen=True)
class ResultRecord:
    """The result of one upload (the contract's record): built once, serialised by :meth:`to_json`.

    The status is derived, never stored apart from the facts it follows from.
    ``notification_id`` is set on each write that is to be published
    (:meth:`with_notification_id`); ``matches_truncated`` on a record cut to fit SNS.
    """

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    reason: str | None
    faces_detected: int
    matches: tuple[Match, ...]
    threshold: float
    references: int
    strategy: str
    processed_at: str  # TIMESTAMP_FORMAT, UTC
    duration_ms: int
    notification_id: str | None = None
    matches_truncated: bool = False

    @property
    def status(self) -> Status:
        if self.reason is not None:
            return Status.INVALID_IMAGE
        if self.faces_detected == 0:
            return Status.NO_FACE
        if self.matches:
            return Status.MATCHED
        return Status.NO_MATCH

    def with_notification_id(self) -> ResultRecord:
        """The record with a new ``notification_id``: one per write that is to be published.

        It makes each such write's body — and so its ETag — unique: two deliveries writing or
        claiming the same record at once cannot both pass ``If-Match``.
        """
        return replace(self, notification_id=uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        """The record as written to S3 and published, in the contract's field order."""
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "status": self.status.value,
            "reason": self.reason,
            "faces_detected": self.faces_detected,
            "matches": [match.to_json() for match in self.matches],
            "threshold": self.threshold,
            "references": self.references,
            "strategy": self.strategy,
            "processed_at": self.processed_at,
            "duration_ms": self.duration_ms,
        }
        if self.notification_id is not None:
            doc["notification_id"] = self.notification_id
        if self.matches_truncated:
            doc["matches_truncated"] = True
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ResultRecord:
        """A record as :meth:`to_json` wrote it. :class:`ValueError` if it is not one, or if its
        stored status is not the one its facts give."""
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} record (schema {doc.get('schema')!r})")
        try:
            record = cls(
                bucket=str(doc["bucket"]),
                key=str(doc["key"]),
                version_id=_optional_str(doc["version_id"]),
                etag=_optional_str(doc["etag"]),
                reason=_optional_str(doc["reason"]),
                faces_detected=int(doc["faces_detected"]),
                matches=tuple(Match.from_json(match) for match in doc["matches"]),
                threshold=float(doc["threshold"]),
                references=int(doc["references"]),
                strategy=str(doc["strategy"]),
                processed_at=str(doc["processed_at"]),
                duration_ms=int(doc["duration_ms"]),
                notification_id=_optional_str(doc.get("notification_id")),
                matches_truncated=doc.get("matches_truncated") is True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed result record: {exc!r}") from exc
        if doc.get("status") != record.status.value:
            raise ValueError(
                f"result record for {record.key!r} says status {doc.get('status')!r}, "
                f"its facts say {record.status.value!r}"
            )
        return record


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


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
