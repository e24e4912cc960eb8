"""The reference set: which objects under REFERENCE_PREFIX are faces of whom, cached with a TTL.

Label rule (CONTRACT.md): ``references/<label>.<ext>`` → the file stem,
``references/<label>/<anything>.<ext>`` → the folder right under the prefix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.errors import translate
from worker.faces import Reference
from worker.telemetry.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger(__name__)

# A reference proven unusable (no face, unreadable) is skipped this long, then tried again: the
# cause may pass (a KMS grant, a permission) and the mark must never outlive the problem.
UNUSABLE_MARK_SECONDS = 600.0
# Rekognition reads JPEG and PNG from S3 as they are; other reference formats are ignored.
REFERENCE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})


def label_for(key: str, prefix: str) -> str | None:
    """The label a reference key stands for, or None when the key is not a usable reference."""
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    name = rest.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot <= 0 or name[dot:].lower() not in REFERENCE_EXTENSIONS:
        return None
    label = (rest.split("/", 1)[0] if "/" in rest else name[:dot]).strip()
    return label or None


def normalise_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def list_references(s3: S3Client, bucket: str, prefix: str) -> list[Reference]:
    """Every usable reference under ``prefix``, paginated, sorted by key."""
    found: list[Reference] = []
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc) from exc
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            label = label_for(key, prefix)
            if label is None:
                if not key.endswith("/"):
                    log.info("reference_ignored", key=key, reason="not a .jpg/.jpeg/.png file")
                continue
            found.append(Reference(label=label, key=key, etag=normalise_etag(obj.get("ETag"))))
    return sorted(found, key=lambda ref: ref.key)


class ReferenceCache:
    """The reference list, listed at most once per TTL (and again after :meth:`invalidate`).

    Also remembers references proven unusable (no face, unreadable: by key and eTag) so that
    they are logged once and skipped for :data:`UNUSABLE_MARK_SECONDS`. A mark ends sooner with
    any reference change (:meth:`invalidate`, which every reference notification calls).
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        prefix: str,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3, self._bucket, self._prefix = s3, bucket, prefix
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._refs: tuple[Reference, ...] = ()
        self._listed_at: float | None = None
        self._unusable: dict[tuple[str, str], float] = {}  # (key, eTag) -> mark ends at
        self.refreshes = 0

    def get(self) -> tuple[Reference, ...]:
        """The references to match against: listed ones, less those marked unusable."""
        with self._lock:
            refs = self._listed_locked()
            now = self._clock()
            self._unusable = {ref: end for ref, end in self._unusable.items() if end > now}
            return tuple(r for r in refs if (r.key, r.etag) not in self._unusable)

    def listed(self) -> tuple[Reference, ...]:
        """Every reference in the bucket, usable or not (what a shared collection must hold)."""
        with self._lock:
            return self._listed_locked()

    def _listed_locked(self) -> tuple[Reference, ...]:
        now = self._clock()
        if self._listed_at is None or now - self._listed_at >= self._ttl:
            self._refs = tuple(list_references(self._s3, self._bucket, self._prefix))
            self._listed_at = now
            self.refreshes += 1
            log.info("references_listed", count=len(self._refs), labels=len(self.labels()))
        return self._refs

    def labels(self) -> set[str]:
        return {ref.label for ref in self._refs}

    def invalidate(self) -> None:
        """A reference changed: list again at the next use, and forget every unusable mark."""
        with self._lock:
            self._listed_at = None
            self._unusable.clear()

    def mark_unusable(self, ref: Reference, reason: str) -> None:
        """Skip ``ref`` for a while. Only for a failure proven to be about this photo."""
        with self._lock:
            now = self._clock()
            if self._unusable.get((ref.key, ref.etag), 0.0) > now:
                return
            self._unusable[(ref.key, ref.etag)] = now + UNUSABLE_MARK_SECONDS
        log.warning("reference_unusable", reference_key=ref.key, label=ref.label, reason=reason)
