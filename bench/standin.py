"""A Rekognition stand-in with a real service's limits, for benchmarks and fault tests.

It is :class:`tests.fakes.rekognition.FakeRekognition` (answers that depend on the image: PNGs of
coloured squares, read from S3) with what the service adds in front of it:

- ``quota_tps``: the account's quota, shared by every caller; a call over it fails at once with
  ``ThrottlingException`` (HTTP 400), as Rekognition does above its TPS quota. AWS does not say
  how it counts, so there are two shapes (``limiter``): ``"bucket"``, a token bucket of
  ``quota_burst`` tokens (default: one second's worth) refilled at ``quota_tps`` per second, and
  ``"sliding"``, a strict one-second sliding window that admits a call only while fewer than
  ``quota_tps`` calls were admitted in the second before it (throttled calls do not count);
- ``latency`` (± ``latency_jitter``) seconds per admitted call;
- ``error_rate``: the share of admitted calls that fail with ``InternalServerError`` (HTTP 500);
- ``throttle_rate``: the share of calls throttled at random, quota or not (a throttling storm);
- ``cache_images``: each S3 object is read once (key and version), for benchmarks whose objects
  never change — it spares the S3 server two GETs per CompareFaces.

Counters (``calls``): per action, ``Throttled``, ``Failed`` and ``Admitted``; ``admitted_times``
holds when each admitted call arrived (monotonic), for calls per second. Over HTTP,
``POST /_control`` takes ``{"reset": true}``, ``{"throttle_rate": x}``, ``{"error_rate": x}`` and
returns ``{"calls": {...}, "admitted_span_s": s, "max_in_1s": n}`` (the most calls admitted in
any one second).

Run alone (one process, so that its CPU is not shared with the benchmark's driver)::

    python -m bench.standin --s3 http://127.0.0.1:5000 --latency 0.15 --quota 25 --limiter sliding
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.rekognition import FakeRekognition


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


LIMITERS = ("bucket", "sliding")


class StandIn(FakeRekognition):
    def __init__(
        self,
        s3_endpoint: str,
        *,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        quota_tps: float | None = None,
        quota_burst: float | None = None,
        limiter: str = "bucket",
        error_rate: float = 0.0,
        throttle_rate: float = 0.0,
        cache_images: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(s3_endpoint)
        self.latency, self.latency_jitter = latency, latency_jitter
        if limiter not in LIMITERS:
            raise ValueError(f"limiter must be one of {LIMITERS}, not {limiter!r}")
        self.quota_tps, self.quota_burst, self.limiter = quota_tps, quota_burst, limiter
        self._defaults = (error_rate, throttle_rate)
        self.error_rate, self.throttle_rate = error_rate, throttle_rate
        self._bucket = self._new_bucket()
        self._random = random.Random(seed)
        self._cache: dict[tuple[str, str, str], bytes] | None = {} if cache_images else None
        self.admitted_times: list[float] = []
        self._open = threading.Event()
        self._open.set()
        self.held = 0

    def hold(self) -> None:
        """Keep every call waiting (as a stalled service does) until :meth:`release`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _new_bucket(self) -> TokenBucket | SlidingWindow | None:
        if self.quota_tps is None:
            return None
        if self.limiter == "sliding":
            return SlidingWindow(self.quota_tps)
        return TokenBucket(self.quota_tps, self.quota_burst or self.quota_tps)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.error_rate, self.throttle_rate = self._defaults
            self.admitted_times.clear()
            self._bucket = self._new_bucket()
            self.held = 0
        self._open.set()

    def set_rates(
        self, *, throttle_rate: float | None = None, error_rate: float | None = None
    ) -> None:
        with self._lock:
            if throttle_rate is not None:
                self.throttle_rate = throttle_rate
            if error_rate is not None:
                self.error_rate = error_rate

    def state(self) -> dict[str, Any]:
        with self._lock:
            times = self.admitted_times
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            most, first = 0, 0
            for last, at in enumerate(times):  # the most admitted calls in any 1 s
                while times[first] <= at - 1.0:
                    first += 1
                most = max(most, last - first + 1)
            return {"calls": dict(self.calls), "admitted_span_s": span, "max_in_1s": most}

    # ------------------------------------------------------------------ HTTP

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/_control":
            control = json.loads(request.get_data() or b"{}")
            if control.get("reset"):
                self.reset()
            self.set_rates(
                throttle_rate=control.get("throttle_rate"), error_rate=control.get("error_rate")
            )
            if "throttle" in control:
                self.throttle(int(control["throttle"]))
            return Response(json.dumps(self.state()), mimetype="application/json")(
                environ, start_response
            )
        action = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        if not self._open.is_set():
            with self._lock:
                self.held += 1
            self._open.wait()
        fail, delay = False, 0.0
        with self._lock:
            throttled = (self.throttle_rate and self._random.random() < self.throttle_rate) or (
                self._bucket is not None and not self._bucket.take()
            )
            if throttled:
                self.calls[action] += 1
                self.calls["Throttled"] += 1
            else:
                self.calls["Admitted"] += 1
                self.admitted_times.append(time.monotonic())
                fail = bool(self.error_rate) and self._random.random() < self.error_rate
                delay = self.latency + (
                    self._random.uniform(-self.latency_jitter, self.latency_jitter)
                    if self.latency_jitter
                    else 0.0
                )
        if throttled:
            return _error(400, "ThrottlingException", "Rate exceeded")(environ, start_response)
        if delay > 0:
            time.sleep(delay)
        if fail:
            with self._lock:
                self.calls[action] += 1
                self.calls["Failed"] += 1
            return _error(500, "InternalServerError", "Internal server error")(
                environ, start_response
            )
        return super()._app(environ, start_response)  # counts the action, answers

    def _image(self, image: dict[str, Any]) -> bytes:
        s3_object = image.get("S3Object")
        if self._cache is None or not s3_object:
            return super()._image(image)
        key = (
            str(s3_object.get("Bucket")),
            str(s3_object.get("Name")),
            str(s3_object.get("Version")),
        )
        with self._lock:
            data = self._cache.get(key)
        if data is None:
            data = super()._image(image)
            with self._lock:
                self._cache[key] = data
        return data


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        json.dumps({"__type": code, "Message": message}),
        status=status,
        mimetype="application/x-amz-json-1.1",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3", required=True, help="the S3 endpoint the images are read from")
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--jitter", dest="latency_jitter", type=float, default=0.0)
    parser.add_argument("--quota", dest="quota_tps", type=float, help="TPS quota (default: none)")
    parser.add_argument("--burst", dest="quota_burst", type=float, help="token bucket only")
    parser.add_argument("--limiter", choices=LIMITERS, default="bucket", help="the quota's shape")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    options = vars(parser.parse_args(argv))  # the names of StandIn's options
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    s3, cache_images = options.pop("s3"), not options.pop("no_cache")
    standin = StandIn(s3, cache_images=cache_images, **options).start()
    print(standin.endpoint, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
