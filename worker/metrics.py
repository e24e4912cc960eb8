"""In-process counters and timings, thread-safe. Exported as CloudWatch EMF by the runner."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Named counters (calls, throttles, retries, uploads by status…) and latency samples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._timings: dict[str, list[float]] = {}

    def incr(self, name: str, value: int = 1) -> None:
        with self._lock:
            self._counts[name] += value

    def observe(self, name: str, value: float) -> None:
        with self._lock:
            self._timings.setdefault(name, []).append(value)

    def count(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def drain(self) -> tuple[dict[str, int], dict[str, list[float]]]:
        """Return and reset everything gathered since the last drain."""
        with self._lock:
            counts, timings = dict(self._counts), self._timings
            self._counts = Counter()
            self._timings = {}
        return counts, timings
