"""The fake Rekognition (:class:`tests.support.rekognition.FakeRekognition`) in a process of its
own, with a real service's limits, for benchmarks.

The local engine's Rekognition API over coloured squares (answers that depend on the image, read
from S3), behind :class:`tests.support.service.Service`: quota (``--limiter bucket|sliding``),
latency, random errors and throttles, call counters and ``POST /_control`` (see that module).
S3 objects are assumed never to change: each is read once (``--no-cache``: at every call).

Run alone (one process, so that its CPU is not shared with the benchmark's driver); it prints its
endpoint on the first line of its output::

    python -m bench.standin --s3 http://127.0.0.1:5000 --latency 0.15 --quota 25 --limiter sliding
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.support.rekognition import FakeRekognition
from tests.support.service import LIMITERS
from worker.telemetry import logs


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
    options = vars(parser.parse_args(argv))  # the names of FakeRekognition's options
    # Warnings and errors only (no line per request), to stderr: stdout carries the endpoint.
    logs.configure("WARNING", "json")
    s3, cache_images = options.pop("s3"), not options.pop("no_cache")
    standin = FakeRekognition(s3, cache_images=cache_images, **options).start()
    print(standin.endpoint, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
