"""What a real AWS JSON service adds in front of its answers, as one WSGI middleware.

:class:`Service` wraps an app that answers the calls (the local engine's
:class:`~worker.local.engine.responses.RekognitionResponse`) with:

- ``quota_tps``: the account's quota, shared by every caller; a call over it fails at once with
  ``ThrottlingException`` (HTTP 400), as Rekognition does above its TPS quota. AWS does not say
  how it counts, so there are two shapes (``limiter``): ``"bucket"``, a token bucket of
  ``quota_burst`` tokens (default: one second's worth) refilled at ``quota_tps`` per second, and
  ``"sliding"``, a strict one-second sliding window that admits a call only while fewer than
  ``quota_tps`` calls were admitted in the second before it (throttled calls do not count);
- ``latency`` (± ``latency_jitter``) seconds per admitted call, its answer's own work included;
- faults: ``error_rate``, the share of admitted calls that fail with ``InternalServerError``
  (HTTP 500); ``throttle_rate``, the share of calls throttled at random, quota or not (a
  throttling storm); :meth:`Service.throttle` (N), the next N calls throttled; :meth:`~Service.hold`
  and :meth:`~Service.release`, every call kept waiting (a stalled service); ``unreadable_keys``,
  S3 keys whose ``S3Object`` answers ``InvalidS3ObjectException`` although the object exists (as
  for a KMS key Rekognition's caller may not use); ``known_actions``, the only actions served
  (others: ``UnknownOperationException``, as from a stand-in that knows fewer calls);
  ``before_call(action, params)``, run before each admitted call (in-process tests);
- counters: ``calls`` per action (every call, throttled or not) and ``Throttled`` and ``Failed``;
  ``admitted_times``, when each admitted call arrived (monotonic).

Over HTTP, ``POST /_control`` takes ``{"reset": true}``, ``{"throttle": n}``,
``{"throttle_rate": x}`` and ``{"error_rate": x}``, and returns :meth:`Service.state`:
``{"calls": {... "Admitted": n}, "admitted_span_s": s, "max_in_1s": n}`` (the most calls
admitted in any one second).
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

LIMITERS = ("bucket", "sliding")
IMAGE_PARAMETERS = ("Image", "SourceImage", "TargetImage")
CONTENT_TYPE = "application/x-amz-json-1.1"
# AWS's own wording (Rekognition developer guide, "Error handling").
UNREADABLE_OBJECT = (
    "Unable to get object metadata from S3. Check object key, region and/or access permissions."
)

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` kept; each call takes one or is refused."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self._tokens = self.capacity
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class SlidingWindow:
    """At most ``limit`` admissions in any ``window`` seconds (arrival times, strictly)."""

    def __init__(self, limit: float, window: float = 1.0) -> None:
        self.limit = max(int(limit), 1)
        self.window = window
        self._admitted: deque[float] = deque()

    def take(self) -> bool:
        now = time.monotonic()
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) < self.limit:
            self._admitted.append(now)
            return True
        return False


def error(code: str, message: str, status: int = 400) -> Response:
    """An AWS JSON-protocol error answer."""
    body = json.dumps({"__type": code, "Message": message})
    return Response(body, status=status, content_type=CONTENT_TYPE)


class Service:
    """The middleware (see the module docstring); ``app`` answers the calls it lets through."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        quota_tps: float | None = None,
        quota_burst: float | None = None,
        limiter: str = "bucket",
        error_rate: float = 0.0,
        throttle_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if limiter not in LIMITERS:
            raise ValueError(f"limiter must be one of {LIMITERS}, not {limiter!r}")
        self.app = app
        self.quota_tps, self.quota_burst, self.limiter = quota_tps, quota_burst, limiter
        self._defaults = (latency, error_rate, throttle_rate)
        self.latency, self.error_rate, self.throttle_rate = self._defaults
        self.latency_jitter = latency_jitter
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._quota = self._new_quota()
        self._throttle_next = 0
        self._open = threading.Event()
        self._open.set()
        self.held = 0
        self.calls: Counter[str] = Counter()
        self.admitted_times: list[float] = []
        self.before_call: Callable[[str, dict[str, Any]], None] | None = None
        self.unreadable_keys: set[str] = set()
        self.known_actions: set[str] | None = None

    def _new_quota(self) -> TokenBucket | SlidingWindow | None:
        if self.quota_tps is None:
            return None
        if self.limiter == "sliding":
            return SlidingWindow(self.quota_tps)
        return TokenBucket(self.quota_tps, self.quota_burst or self.quota_tps)

    # ------------------------------------------------------------------ control

    def throttle(self, calls: int) -> None:
        """Throttle the next ``calls`` calls, whatever the quota."""
        with self._lock:
            self._throttle_next = calls

    def hold(self) -> None:
        """Keep every call waiting (as a stalled service does) until :meth:`release`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def set_rates(
        self, *, throttle_rate: float | None = None, error_rate: float | None = None
    ) -> None:
        with self._lock:
            if throttle_rate is not None:
                self.throttle_rate = throttle_rate
            if error_rate is not None:
                self.error_rate = error_rate

    def reset(self) -> None:
        """Counters cleared; latency, rates and faults back to those the service was made with."""
        with self._lock:
            self.calls.clear()
            self.admitted_times.clear()
            self.latency, self.error_rate, self.throttle_rate = self._defaults
            self._quota = self._new_quota()
            self._throttle_next = 0
            self.held = 0
            self.before_call = None
            self.unreadable_keys = set()
            self.known_actions = None
        self._open.set()

    def state(self) -> dict[str, Any]:
        with self._lock:
            times = self.admitted_times
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            most, first = 0, 0
            for last, at in enumerate(times):  # the most admitted calls in any 1 s
                while times[first] <= at - 1.0:
                    first += 1
                most = max(most, last - first + 1)
            calls = {**self.calls, "Admitted": len(times)}
            return {"calls": calls, "admitted_span_s": span, "max_in_1s": most}

    def _control(self, request: Request) -> Response:
        control = json.loads(request.get_data() or b"{}")
        if control.get("reset"):
            self.reset()
        self.set_rates(
            throttle_rate=control.get("throttle_rate"), error_rate=control.get("error_rate")
        )
        if "throttle" in control:
            self.throttle(int(control["throttle"]))
        return Response(json.dumps(self.state()), mimetype="application/json")

    # ------------------------------------------------------------------ calls

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/_control":
            return self._control(request)(environ, start_response)
        answer, done_at = self._front(request, environ)
        body = list((answer or self.app)(environ, start_response))  # sent once this returns
        # A call takes `latency` in all, its answer's own work included, as a remote service's
        # would, whatever this process's CPU is doing (the 2-core benchmarks share it).
        left = done_at - time.monotonic()
        if left > 0:
            time.sleep(left)
        return body

    def _front(self, request: Request, environ: dict[str, Any]) -> tuple[Response | None, float]:
        """The service's answer when the call does not reach ``app`` (None when it does), and
        when (monotonic) the call's answer is due."""
        action = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        if not self._open.is_set():
            with self._lock:
                self.held += 1
            self._open.wait()
        throttled, fail, delay = self._admit(action)
        if throttled:  # at once
            return error("ThrottlingException", "Rate exceeded"), 0.0
        done_at = time.monotonic() + delay
        if fail:
            with self._lock:
                self.calls["Failed"] += 1
            return error("InternalServerError", "Internal server error", 500), done_at
        if self.known_actions is not None and action not in self.known_actions:
            return error("UnknownOperationException", f"Unknown operation {action!r}"), done_at
        data = request.get_data()
        environ["wsgi.input"] = io.BytesIO(data)  # for ``app``, which reads the body again
        params = json.loads(data or b"{}")
        if self.before_call is not None:
            self.before_call(action, params)
        if any(self._unreadable(params.get(name)) for name in IMAGE_PARAMETERS):
            return error("InvalidS3ObjectException", UNREADABLE_OBJECT), done_at
        return None, done_at

    def _admit(self, action: str) -> tuple[bool, bool, float]:
        """(throttled, to fail, latency) of one call; counts it."""
        with self._lock:
            self.calls[action] += 1
            throttled = self._throttle_next > 0
            if throttled:
                self._throttle_next -= 1
            throttled = (
                throttled
                or (bool(self.throttle_rate) and self._random.random() < self.throttle_rate)
                or (self._quota is not None and not self._quota.take())
            )
            if throttled:
                self.calls["Throttled"] += 1
                return True, False, 0.0
            self.admitted_times.append(time.monotonic())
            fail = bool(self.error_rate) and self._random.random() < self.error_rate
            jitter = self.latency_jitter
            delay = self.latency + (self._random.uniform(-jitter, jitter) if jitter else 0.0)
            return False, fail, delay

    def _unreadable(self, image: Any) -> bool:
        s3_object = image.get("S3Object") if isinstance(image, dict) else None
        return isinstance(s3_object, dict) and s3_object.get("Name") in self.unreadable_keys
