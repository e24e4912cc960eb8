"""A process-wide cap on calls per second, shared by every thread (REKOGNITION_MAX_TPS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces calls evenly at ``rate`` per second, allowing a burst of ``burst`` calls.

    Each caller reserves the next free slot under a lock and sleeps outside it, so a thread that
    waits never blocks another thread's reservation.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._burst_span = self._interval * max(burst - 1, 0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()

    def acquire(self) -> float:
        """Wait for a slot; return how long this call waited."""
        with self._lock:
            now = self._clock()
            slot = max(self._next, now - self._burst_span)
            self._next = slot + self._interval
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
            return delay
        return 0.0


class Unlimited:
    """The limiter when REKOGNITION_MAX_TPS is unset."""

    def acquire(self) -> float:
        return 0.0
