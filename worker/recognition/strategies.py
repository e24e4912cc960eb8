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

from typing import Protocol

from worker.faces import Box
from worker.recognition.client import Image
from worker.recognition.compare import StrategyResult
from worker.references import ReferenceCache


class MatchStrategy(Protocol):
    name: str

    def match(self, upload: Image, faces: list[Box], threshold: float) -> StrategyResult: ...


def prefer_collection(references: int, faces: int) -> bool:
    """The break-even: N CompareFaces against F SearchFacesByImage."""
    return references > faces


class AutoStrategy:
    name = "auto"

    def __init__(
        self, compare: MatchStrategy, collection: MatchStrategy, references: ReferenceCache
    ) -> None:
        self._compare, self._collection, self._refs = compare, collection, references

    def match(self, upload: Image, faces: list[Box], threshold: float) -> StrategyResult:
        chosen = (
            self._collection
            if prefer_collection(len(self._refs.get()), len(faces))
            else self._compare
        )
        return chosen.match(upload, faces, threshold)
