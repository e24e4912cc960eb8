"""The ``compare`` strategy: one CompareFaces per reference, the upload as the target.

With the reference as ``SourceImage`` and the upload as ``TargetImage``, Rekognition compares the
reference's face with up to 100 faces of the upload, so every face in a group photo is checked.
Both images are ``S3Object`` references: nothing is downloaded. Calls of one upload run on a
shared, bounded pool.
"""

from __future__ import annotations

from concurrent.futures import Executor

from worker.errors import InvalidImageError, PermanentError, UnreadableObjectError
from worker.faces import Box, Candidate, Reference
from worker.recognition.client import Image, Rekognition
from worker.recognition.strategy import Begun, ReferenceFailure, StrategyResult
from worker.references import ReferenceCache

# A reference photo is checked on its own with DetectFaces (one call) before it is blamed.
REFERENCE_PROBE_ERRORS = (InvalidImageError, UnreadableObjectError)


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

    def detect(self, upload: Image) -> list[Box]:
        return self._rek.detect_faces(upload)

    def begin(self, upload: Image, threshold: float) -> Begun:
        """Nothing to start before the faces are known: the references to compare with."""
        return Begun(self.name, self._refs.get())

    def match(
        self, begun: Begun, upload: Image, faces: list[Box], threshold: float
    ) -> StrategyResult:
        """One CompareFaces per reference (when the upload shows a face)."""
        refs = begun.refs
        if not faces:
            return StrategyResult([], [], references=len(refs), strategy=self.name)
        futures = [self._executor.submit(self._compare, ref, upload, threshold) for ref in refs]
        candidates: list[Candidate] = []
        failures: list[ReferenceFailure] = []
        for future in futures:
            found = future.result()
            if isinstance(found, ReferenceFailure):
                failures.append(found)
            else:
                candidates.extend(found)
        return StrategyResult(
            faces, candidates, references=len(refs), strategy=self.name, failures=tuple(failures)
        )

    def _compare(
        self, ref: Reference, upload: Image, threshold: float
    ) -> list[Candidate] | ReferenceFailure:
        source = {"S3Object": {"Bucket": self._bucket, "Name": ref.key}}
        try:
            pairs = self._rek.compare_faces(source, upload, threshold)
        except PermanentError as exc:
            # Either image may be meant (the upload may have been deleted or replaced since
            # DetectFaces): reported, never decided here.
            return ReferenceFailure(ref, exc)
        return [
            Candidate(label=ref.label, reference_key=ref.key, similarity=similarity, face=box)
            for similarity, box in pairs
        ]


def probe_reference(rekognition: Rekognition, bucket: str, ref: Reference) -> str | None:
    """Why ``ref`` cannot serve as a reference, checked on the photo alone; None when it can.

    DetectFaces on the reference is a one-image call, so its answer is about this photo: no face,
    not an image, or unreadable. A retryable failure propagates (nothing is proven).
    """
    try:
        faces = rekognition.detect_faces({"S3Object": {"Bucket": bucket, "Name": ref.key}})
    except REFERENCE_PROBE_ERRORS as exc:
        return str(exc)
    return None if faces else "no face found in the reference photo"
