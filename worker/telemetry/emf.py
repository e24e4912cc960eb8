"""The worker's metrics as CloudWatch Embedded Metric Format (EMF) log lines on stderr.

A daemon thread drains :class:`~worker.telemetry.metrics.Metrics` every ``FLUSH_INTERVAL_SECONDS`` (and once
more at shutdown) and writes one JSON document per flush; CloudWatch Logs (ECS ``awslogs``) turns
it into metrics of the ``FaceMatchWorker`` namespace. The document follows the documented
structure (``_aws.Timestamp``, ``_aws.CloudWatchMetrics[].Namespace/Dimensions/Metrics``, the
values as top-level members), written here rather than with ``aws-embedded-metrics``: that
library's ``MetricsLogger`` resolves its environment asynchronously (probing the EC2 metadata
endpoint) and writes to stdout (reserved for a verb's output by the contract) or to a CloudWatch
agent socket, and importing any part of it loads aiohttp (+0.35 s start-up, +8 MB RSS here) —
all for one ``json.dumps`` per minute from a plain thread.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import UPLOAD_STATUS_PREFIX, Metric, Metrics

log = get_logger(__name__)

NAMESPACE = "FaceMatchWorker"
# How often the counters are written. CloudWatch's standard resolution is one minute.
FLUSH_INTERVAL_SECONDS = 60.0
# One dimension for every metric: the service, so replicas aggregate into one series.
DIMENSIONS = {"Service": "face-match-worker"}
# EMF limits: metric definitions per directive, values per metric array.
MAX_METRICS_PER_DOCUMENT = 100
MAX_VALUES_PER_METRIC = 100
# The ``event`` member makes the line look like the worker's other JSON log lines.
EVENT = "emf_metrics"

UPLOADS = Metric.UPLOADS.value

REFERENCE_CACHE_REFRESHES = Metric.REFERENCE_CACHE_REFRESHES.value
# Written on every flush, zero when nothing happened, so alarms see 0 instead of missing data.
COUNTERS = (*(metric.value for metric in Metric if metric is not Metric.UPLOAD_LATENCY_MS),)
MILLISECONDS_SUFFIX = "Ms"


def build_documents(
    counts: Mapping[str, int],
    timings: Mapping[str, list[float]],
    *,
    timestamp_ms: int,
    properties: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The EMF documents for one flush: every counter and the first 100 samples of each timing
    in the first; further samples (past EMF's 100 values per metric) in more documents."""
    counters = {name: 0 for name in COUNTERS}
    counters.update(counts)
    counters[UPLOADS] = sum(v for k, v in counters.items() if k.startswith(UPLOAD_STATUS_PREFIX))
    values: dict[str, float | list[float]] = {}
    units: dict[str, str] = {}
    for name, count in sorted(counters.items()):
        values[name], units[name] = count, "Count"
    documents: list[dict[str, Any]] = []
    offset = 0
    while True:
        for name, samples in sorted(timings.items()):
            chunk = samples[offset : offset + MAX_VALUES_PER_METRIC]
            if chunk:
                values[name] = [round(v, 3) for v in chunk]
                units[name] = "Milliseconds" if name.endswith(MILLISECONDS_SUFFIX) else "None"
        names = list(values)
        for start in range(0, len(names), MAX_METRICS_PER_DOCUMENT):
            part = names[start : start + MAX_METRICS_PER_DOCUMENT]
            documents.append(_document(part, values, units, timestamp_ms, properties or {}))
        offset += MAX_VALUES_PER_METRIC
        if not any(len(samples) > offset for samples in timings.values()):
            return documents
        values, units = {}, {}


def _document(
    names: list[str],
    values: Mapping[str, float | list[float]],
    units: Mapping[str, str],
    timestamp_ms: int,
    properties: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "event": EVENT,
        **properties,
        **DIMENSIONS,
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(DIMENSIONS)],
                    "Metrics": [{"Name": name, "Unit": units[name]} for name in names],
                }
            ],
        },
        **{name: values[name] for name in names},
    }


class EmfExporter:
    """Drains ``metrics`` into EMF lines on ``stream`` every ``interval`` seconds and at
    :meth:`close`. ``sources`` are cumulative counters kept elsewhere (e.g. the reference
    cache's ``refreshes``): their increase since the last flush is written under their name."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        interval: float = FLUSH_INTERVAL_SECONDS,
        sources: Mapping[str, Callable[[], int]] | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._interval = interval
        self._sources = dict(sources or {})
        self._seen = dict.fromkeys(self._sources, 0)
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._properties = {"Replica": f"{socket.gethostname()}:{os.getpid()}"}

    def start(self) -> EmfExporter:
        self._thread = threading.Thread(target=self._loop, name="emf", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and write what was gathered since the last flush."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.flush()

    def flush(self) -> None:
        with self._lock:  # one flush at a time: the thread's and close()'s never interleave
            counts, timings = self._metrics.drain()
            for name, read in self._sources.items():
                try:
                    current = read()
                except Exception as exc:  # noqa: BLE001  # a metric source must never stop the worker
                    log.warning("emf_source_failed", metric=name, error=str(exc))
                    continue
                counts[name] = counts.get(name, 0) + current - self._seen[name]
                self._seen[name] = current
            documents = build_documents(
                counts,
                timings,
                timestamp_ms=int(self._clock() * 1000),
                properties=self._properties,
            )
            stream = self._stream or sys.stderr
            # One write per line, so it is never split by a log line from another thread.
            for document in documents:
                stream.write(json.dumps(document, separators=(",", ":")) + "\n")
            stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # keep exporting; a broken stream is logged, not fatal
                log.exception("emf_flush_failed")
