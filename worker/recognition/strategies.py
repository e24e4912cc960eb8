"""How an upload's faces are matched, and how ``STRATEGY=auto`` chooses.

Every strategy follows :class:`~worker.recognition.strategy.MatchStrategy`. Cost per upload, after the one DetectFaces both strategies share (F faces found, N references):

* ``compare``: N CompareFaces calls;
* ``collection``: F SearchFacesByImage calls (plus IndexFaces once per new reference photo).

Every one of these calls is priced the same by Rekognition (one image-analysis unit) and counts
the same against the account's TPS quota, so ``auto`` picks ``collection`` when N > F — strictly
fewer calls — and ``compare`` otherwise (crowds bigger than the reference set). Below 10
references it keeps to ``compare``: the few calls saved do not pay for a collection to create,
index and keep in sync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from worker.errors import (
    InvalidImageError,
    ObjectGoneError,
    PermanentError,
    RetryableError,
    UnreadableObjectError,
)
from worker.faces import Box
from worker.recognition.client import Image
from worker.recognition.collection import CollectionStrategy
from worker.recognition.compare import CompareStrategy
from worker.recognition.strategy import Begun, StrategyResult
from worker.references import ReferenceCache
from worker.telemetry.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


# Below this many reference photos ``auto`` keeps to ``compare``: a few calls saved per upload do
# not pay for a second moving part (a collection to create, index and keep in sync).
AUTO_MIN_COLLECTION_REFERENCES = 10
# After bringing the collection up to date failed beyond its retries, ``auto`` matches with
# ``compare`` this long before it tries the collection again.
COLLECTION_COOL_OFF_SECONDS = 600.0


def prefer_collection(references: int, faces: int) -> bool:
    """The break-even: N CompareFaces against F SearchFacesByImage (from 10 references on)."""
    return references >= AUTO_MIN_COLLECTION_REFERENCES and references > faces


class AutoStrategy:
    """Chooses per upload by :func:`prefer_collection`.

    Where a single face would already favour the collection, the whole-upload search is
    started next to DetectFaces, as the collection strategy does; it is wasted (one call) only
    when the upload shows no face or more faces than there are references.

    Where the collection API cannot be used at all (an endpoint that implements only DetectFaces
    and CompareFaces, a role without the collection permissions), ``auto`` says so once and keeps
    to ``compare`` for the rest of the process instead of failing uploads; where keeping the
    collection up to date fails for a passing reason, it uses ``compare`` for a while.
    """

    name = "auto"

    def __init__(
        self,
        compare: CompareStrategy,
        collection: CollectionStrategy,
        references: ReferenceCache,
    ) -> None:
        self._compare, self._collection, self._refs = compare, collection, references
        self._collection_usable = True
        self._collection_retry_at = 0.0
        self._clock = time.monotonic
        self._lock = threading.Lock()

    def detect(self, upload: Image) -> list[Box]:
        return self._compare.detect(upload)

    def begin(self, upload: Image, threshold: float) -> Begun:
        references = len(self._refs.get())
        if self._collection_ready() and prefer_collection(references, 1):
            begun = self._guarded(lambda: self._collection.begin(upload, threshold), cool_off=True)
            if begun is not None:
                return begun
        return self._compare.begin(upload, threshold)

    def match(
        self, begun: Begun, upload: Image, faces: list[Box], threshold: float
    ) -> StrategyResult:
        if begun.strategy == self._collection.name and prefer_collection(
            len(begun.refs), len(faces)
        ):
            result = self._guarded(lambda: self._collection.match(begun, upload, faces, threshold))
            if result is not None:
                return result
        compared = self._compare.begin(upload, threshold)
        return replace(
            self._compare.match(compared, upload, faces, threshold), unusable=begun.unusable
        )

    def _collection_ready(self) -> bool:
        return self._collection_usable and self._clock() >= self._collection_retry_at

    def _guarded(self, step: Callable[[], T], cool_off: bool = False) -> T | None:
        """Run a collection step; on a permanent failure of the API itself, give it up.

        With ``cool_off`` (bringing the collection up to date), a failure that outlasted the
        retries also sends uploads to ``compare`` for a while instead of failing them.
        """
        try:
            return step()
        except (InvalidImageError, ObjectGoneError, UnreadableObjectError):
            raise  # about the upload, not the collection API
        except PermanentError as exc:
            with self._lock:
                first, self._collection_usable = self._collection_usable, False
            if first:
                log.warning("collection_unavailable_using_compare", error=str(exc), code=exc.code)
            return None
        except RetryableError as exc:
            if not cool_off:
                raise
            self._collection_retry_at = self._clock() + COLLECTION_COOL_OFF_SECONDS
            log.warning(
                "collection_failing_using_compare",
                error=str(exc),
                retry_in_s=COLLECTION_COOL_OFF_SECONDS,
            )
            return None
