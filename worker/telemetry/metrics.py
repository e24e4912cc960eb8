"""In-process counters and timings, thread-safe. Exported as CloudWatch EMF by the runner."""

from __future__ import annotations

import threading
from collections import Counter
from enum import StrEnum


class Metric(StrEnum):
    """Every metric the worker emits, by its CloudWatch name: the one list of them."""

    REKOGNITION_CALLS = "RekognitionCalls"
    REKOGNITION_THROTTLES = "RekognitionThrottles"
    REKOGNITION_RETRIES = "RekognitionRetries"
    DLQ_SENDS = "DLQSends"
    DUPLICATE_DELIVERIES = "DuplicateDeliveries"
    REFERENCE_CACHE_REFRESHES = "ReferenceCacheRefreshes"
    UPLOADS = "Uploads"
    """The sum of the ``Uploads.<status>`` counters (computed at export)."""
    UPLOADS_MATCHED = "Uploads.matched"
    UPLOADS_NO_MATCH = "Uploads.no_match"
    UPLOADS_NO_FACE = "Uploads.no_face"
    UPLOADS_INVALID_IMAGE = "Uploads.invalid_image"
    UPLOAD_LATENCY_MS = "UploadLatencyMs"


UPLOAD_STATUS_PREFIX = f"{Metric.UPLOADS}."


def upload_status_metric(status: str) -> Metric:
    """``Uploads.<status>``: uploads that ended with that result status (a ValueError for a
    status without its metric: tests/unit/test_emf.py checks every Status has one)."""
    return Metric(f"{UPLOAD_STATUS_PREFIX}{status}")


class Metrics:
    """Named counters (calls, throttles, retries, uploads by status…) and latency samples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._timings: dict[str, list[float]] = {}

    def incr(self, name: Metric | str, value: int = 1) -> None:
        """``name``: a :class:`Metric` or :func:`upload_status_metric`."""
        with self._lock:
            self._counts[name] += value

    def observe(self, name: Metric, value: float) -> None:
        with self._lock:
            self._timings.setdefault(name, []).append(value)

    def count(self, name: Metric | str) -> int:
        with self._lock:
            return self._counts[name]

    def drain(self) -> tuple[dict[str, int], dict[str, list[float]]]:
        """Return and reset everything gathered since the last drain."""
        with self._lock:
            counts, timings = dict(self._counts), self._timings
            self._counts = Counter()
            self._timings = {}
        return counts, timings
