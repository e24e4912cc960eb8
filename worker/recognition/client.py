"""The Rekognition adapter: every call rate-limited, retried, translated, counted."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState

from worker.aws.errors import translate
from worker.aws.retry import with_retries
from worker.errors import InvalidImageError, NoFaceError, ThrottledError
from worker.faces import Box
from worker.recognition.ratelimit import QuotaLimiter, Slot
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import Metric, Metrics

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient

log = get_logger(__name__)

Image = dict[str, Any]
"""A Rekognition ``Image``: ``{"S3Object": {"Bucket", "Name"[, "Version"]}}`` or ``{"Bytes": b}``."""


class Rekognition:
    def __init__(
        self,
        client: RekognitionClient,
        *,
        max_tps: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        # REKOGNITION_MAX_TPS, or learned from the service's throttles when unset.
        self._limiter = QuotaLimiter(max_tps)
        self._metrics = metrics or Metrics()
        # The slot of the call this thread is making: the limiter counts it from when it leaves.
        self._current = threading.local()
        client.meta.events.register_last(
            "before-send.rekognition", self._on_send, unique_id=f"quota-limiter-{id(self)}"
        )

    def detect_faces(self, image: Image) -> list[Box]:
        """Boxes of every face Rekognition finds in ``image`` (default attributes)."""
        try:
            response = self.call("detect_faces", Image=image)
        except NoFaceError as exc:
            # DetectFaces answers "no face" with an empty list; InvalidParameterException here
            # means the image itself is unusable (too small, odd dimensions).
            raise InvalidImageError(f"Rekognition refused the image: {exc}", code=exc.code) from exc
        return [
            Box.from_rekognition(face.get("BoundingBox") or {})
            for face in response.get("FaceDetails", [])
        ]

    def compare_faces(
        self, source: Image, target: Image, threshold: float
    ) -> list[tuple[float, Box]]:
        """(similarity, box in target) for each target face matching the source's largest face."""
        response = self.call(
            "compare_faces", SourceImage=source, TargetImage=target, SimilarityThreshold=threshold
        )
        return [
            (
                float(match.get("Similarity", 0.0)),
                Box.from_rekognition((match.get("Face") or {}).get("BoundingBox") or {}),
            )
            for match in response.get("FaceMatches", [])
        ]

    def call(self, operation: str, **params: Any) -> Any:
        """One API call under the rate limit, retried on retryable failures only."""
        method = getattr(self._client, operation)

        def once() -> Any:
            slot = self._limiter.acquire()
            self._metrics.incr(Metric.REKOGNITION_CALLS)
            self._current.slot = slot
            try:
                return method(**params)
            except Exception as exc:
                error = translate(exc)
                if isinstance(error, ThrottledError):
                    self._metrics.incr(Metric.REKOGNITION_THROTTLES)
                    self._throttled(slot)
                raise error from exc
            finally:
                self._current.slot = None

        return with_retries(once, on_retry=self._on_retry)

    def _on_send(self, **_: Any) -> None:
        slot: Slot | None = getattr(self._current, "slot", None)
        if slot is not None:
            self._limiter.sent(slot)

    def _throttled(self, slot: Slot) -> None:
        limit = self._limiter.throttled(slot)
        if limit is not None:
            log.warning("rekognition_quota_learned", calls_per_second=limit)

    def _on_retry(self, state: RetryCallState) -> None:
        self._metrics.incr(Metric.REKOGNITION_RETRIES)
        outcome = state.outcome
        log.info(
            "rekognition_retry",
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(outcome.exception()) if outcome else None,
        )
