"""The client-side limit on Rekognition calls per second, shared by every thread of a process.

AWS does not say how it counts a TPS quota. The least forgiving shape is a strict one-second
sliding window — a call is refused while ``N`` calls were admitted in the second before it — and
calls that keep to it keep to a token bucket of ``N`` per second too. So :class:`QuotaLimiter`
lets at most ``N`` calls leave in any window of :data:`WINDOW_SECONDS` plus
:data:`MARGIN_SECONDS`, each at least ``window / N`` after the one before (never a burst: calls
sent together reach the service unevenly), and counts a call from the moment it actually leaves
(botocore's ``before-send``), so a thread that woke up late does not shorten the next window.

``N`` is ``REKOGNITION_MAX_TPS``, or, when that is unset, learned: no limit until the service
throttles; the calls it admitted from this process in the second before the throttled one are
then its quota as the service counts it (all of it, or this process's share). After every
:data:`PROBE_SECONDS` in which it held calls back without a throttle, the limit grows halfway back
to the most the service was seen to admit (a throttling storm is over), or by one call beyond it
(the quota may have been raised, another client may have stopped).

Callers take turns in arrival order; the one whose turn it is sleeps outside the lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 1.0
# Added to every window: how much later than the call N before it a call may reach the service
# (a thread scheduled late, the network, the service's own queue) and still not be counted in
# the same second. On the benchmark's stand-in (send to arrival): median 2 to 4 ms, 99th
# percentile 20 to 45 ms with the 2-core machine loaded.
MARGIN_SECONDS = 0.025
# A learned limit that held calls back this long without a throttle grows by one.
PROBE_SECONDS = 5.0


class Slot:
    """One call: when it left (or is about to), and whether the service throttled it."""

    __slots__ = ("at", "throttled")

    def __init__(self, at: float) -> None:
        self.at = at
        self.throttled = False


class QuotaLimiter:
    """``rate`` calls per second at most (see the module's doc); ``rate=None`` learns it."""

    def __init__(
        self,
        rate: float | None = None,
        *,
        margin: float = MARGIN_SECONDS,
        probe_seconds: float = PROBE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and not 0 < rate < math.inf:
            raise ValueError("rate must be positive and finite")
        self._learn = rate is None
        self._margin, self._probe_seconds = margin, probe_seconds
        self._clock, self._sleep = clock, sleep
        self._turns = threading.Condition()
        self._next_ticket = self._serving = 0
        self._sent: deque[Slot] = deque()  # the calls of the last two windows, in order
        self._planned = -math.inf  # when the last call was due to leave
        self._learned_at = -math.inf
        self._best = 0  # the most calls the service was seen to admit in a second
        self._probe_at = math.inf
        self._binding = False  # held a call back since the last probe
        self.limit: int | None = None
        """Calls allowed per window; None: no limit (yet)."""
        self.window = WINDOW_SECONDS + margin
        self._gap = 0.0
        if rate is not None:
            self._set_limit(rate)

    def _set_limit(self, rate: float) -> None:
        self.limit = max(1, math.floor(rate))
        self.window = self.limit / rate * WINDOW_SECONDS + self._margin
        self._gap = self.window / self.limit

    def acquire(self) -> Slot:
        """Wait for this call's turn; return its slot (for :meth:`sent` and :meth:`throttled`)."""
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._turns.wait()
            try:
                while True:
                    now = self._clock()
                    self._probe(now)
                    due = self._due(now)
                    if due <= now:
                        break
                    self._binding = True
                    self._turns.release()  # sleep without the lock, keeping the turn
                    try:
                        self._sleep(due - now)
                    finally:
                        self._turns.acquire()
                slot = Slot(now)
                self._planned = due
                self._sent.append(slot)
                horizon = now - 2 * self.window
                while self._sent[0].at < horizon:
                    self._sent.popleft()
                return slot
            finally:
                self._serving += 1
                self._turns.notify_all()

    def sent(self, slot: Slot) -> None:
        """The call is leaving now: the window after it counts from here."""
        with self._turns:
            slot.at = max(slot.at, self._clock())

    def throttled(self, slot: Slot) -> int | None:
        """The service refused the call of ``slot``. Learning, the calls it admitted in the
        second before are the quota (or this process's share of it): return the new limit when
        that lowers it, else None."""
        with self._turns:
            slot.throttled = True
            if not self._learn or slot.at < self._learned_at:
                return None  # a fixed limit, or the call left under a limit since lowered
            admitted = 0
            for earlier in self._sent:  # the calls that left before it, in the second before it
                if earlier is slot:
                    break
                if not earlier.throttled and earlier.at >= slot.at - WINDOW_SECONDS:
                    admitted += 1
            if not admitted:
                return None  # nothing of ours was admitted: no measure of our share
            now = self._clock()
            self._probe_at, self._binding = now + self._probe_seconds, False
            self._best = max(self._best, admitted)
            if self.limit is not None and admitted >= self.limit:
                return None
            self._set_limit(admitted)
            self._learned_at = now
            return admitted

    def _due(self, now: float) -> float:
        if self.limit is None:
            return now
        due = max(now, self._planned + self._gap)
        if len(self._sent) >= self.limit:
            due = max(due, self._sent[-self.limit].at + self.window)
        return due

    def _probe(self, now: float) -> None:
        if self.limit is None or not self._learn or now < self._probe_at:
            return
        if self._binding:  # halfway back to the best seen (after a storm), then one at a time
            self._set_limit(max(self.limit + 1, (self.limit + self._best + 1) // 2))
        self._probe_at, self._binding = now + self._probe_seconds, False
