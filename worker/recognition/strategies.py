"""How an upload's faces are matched, and how ``STRATEGY=auto`` chooses.

Cost per upload, after the one DetectFaces both strategies share (F faces found, N references):

* ``compare``: N CompareFaces calls;
* ``collection``: F SearchFacesByImage calls (plus IndexFaces once per new reference photo).

Every one of these calls is priced the same by Rekognition (one image-analysis unit) and counts
the same against the account's TPS quota, so ``auto`` picks ``collection`` exactly when N > F —
strictly fewer calls — and ``compare`` otherwise (tiny reference sets, crowds bigger than the
reference set), which also needs no collection to be kept in sync.
"""

from __future__ import annotations

import threading
from typing import Protocol

from worker.errors import InvalidImageError, ObjectGoneError, PermanentError
from worker.faces import Box
from worker.logs import get_logger
from worker.recognition.client import Image
from worker.recognition.compare import StrategyResult
from worker.references import ReferenceCache

log = get_logger(__name__)


class MatchStrategy(Protocol):
    name: str

    def match(self, upload: Image, faces: list[Box], threshold: float) -> StrategyResult: ...


def prefer_collection(references: int, faces: int) -> bool:
    """The break-even: N CompareFaces against F SearchFacesByImage."""
    return references > faces


class AutoStrategy:
    """Chooses per upload by :func:`prefer_collection`.

    Where the collection API cannot be used at all (an endpoint that implements only DetectFaces
    and CompareFaces, a role without the collection permissions), ``auto`` says so once and keeps
    to ``compare`` for the rest of the process instead of failing uploads.
    """

    name = "auto"

    def __init__(
        self, compare: MatchStrategy, collection: MatchStrategy, references: ReferenceCache
    ) -> None:
        self._compare, self._collection, self._refs = compare, collection, references
        self._collection_usable = True
        self._lock = threading.Lock()

    def match(self, upload: Image, faces: list[Box], threshold: float) -> StrategyResult:
        if self._collection_usable and prefer_collection(len(self._refs.get()), len(faces)):
            try:
                return self._collection.match(upload, faces, threshold)
            except (InvalidImageError, ObjectGoneError):
                raise
            except PermanentError as exc:
                with self._lock:
                    first, self._collection_usable = self._collection_usable, False
                if first:
                    log.warning(
                        "collection_unavailable_using_compare", error=str(exc), code=exc.code
                    )
        return self._compare.match(upload, faces, threshold)
