"""The ``compare`` strategy: one CompareFaces per reference, the upload as the target.

With the reference as ``SourceImage`` and the upload as ``TargetImage``, Rekognition compares the
reference's face with up to 100 faces of the upload, so every face in a group photo is checked.
Both images are ``S3Object`` references: nothing is downloaded. Calls of one upload run on a
shared, bounded pool.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from worker.errors import PermanentError
from worker.faces import Box, Candidate, Reference
from worker.recognition.client import Image, Rekognition
from worker.references import ReferenceCache


@dataclass(frozen=True)
class StrategyResult:
    """What a strategy found: the upload's faces and the raw candidates for them."""

    faces: list[Box]
    candidates: list[Candidate]
    references: int
    strategy: str


class CompareStrategy:
    name = "compare"

    def __init__(
        self,
        rekognition: Rekognition,
        references: ReferenceCache,
        bucket: str,
        executor: Executor,
    ) -> None:
        self._rek = rekognition
        self._refs = references
        self._bucket = bucket
        self._executor = executor

    def analyse(self, upload: Image, threshold: float) -> StrategyResult:
        """DetectFaces, then (when there is a face) one CompareFaces per reference."""
        return self.match(upload, self._rek.detect_faces(upload), threshold)

    def match(self, upload: Image, faces: list[Box], threshold: float) -> StrategyResult:
        refs = self._refs.get()
        if not faces:
            return StrategyResult([], [], references=len(refs), strategy=self.name)
        futures = [self._executor.submit(self._compare, ref, upload, threshold) for ref in refs]
        candidates: list[Candidate] = []
        for future in futures:
            candidates.extend(future.result())
        return StrategyResult(faces, candidates, references=len(refs), strategy=self.name)

    def _compare(self, ref: Reference, upload: Image, threshold: float) -> list[Candidate]:
        source = {"S3Object": {"Bucket": self._bucket, "Name": ref.key}}
        try:
            pairs = self._rek.compare_faces(source, upload, threshold)
        except PermanentError as exc:
            # The upload already passed DetectFaces, so a permanent error names the reference
            # (no face in it, not an image, deleted since listing). It never fails the upload.
            self._refs.mark_unusable(ref, str(exc))
            return []
        return [
            Candidate(label=ref.label, reference_key=ref.key, similarity=similarity, face=box)
            for similarity, box in pairs
        ]
