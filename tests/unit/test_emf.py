"""EMF documents: the documented ``_aws`` structure, zeros for idle counters, EMF's limits."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from worker.telemetry.emf import (
    COUNTERS,
    MAX_VALUES_PER_METRIC,
    NAMESPACE,
    EmfExporter,
    build_documents,
)
from worker.telemetry.metrics import Metrics


def directive(document: dict[str, Any]) -> dict[str, Any]:
    directives = document["_aws"]["CloudWatchMetrics"]
    assert len(directives) == 1
    result: dict[str, Any] = directives[0]
    return result


def check_valid(document: dict[str, Any]) -> None:
    """What CloudWatch requires of an EMF document (the specification's MUSTs we rely on)."""
    assert isinstance(document["_aws"]["Timestamp"], int)
    spec = directive(document)
    assert spec["Namespace"] == NAMESPACE
    for dimension_set in spec["Dimensions"]:
        for name in dimension_set:
            assert isinstance(document[name], str)
    assert 0 < len(spec["Metrics"]) <= 100
    for metric in spec["Metrics"]:
        value = document[metric["Name"]]
        assert isinstance(value, int | float) or (
            isinstance(value, list) and 0 < len(value) <= MAX_VALUES_PER_METRIC
        )


def test_counters_are_written_with_zeros_and_an_uploads_total() -> None:
    [doc] = build_documents(
        {"Uploads.matched": 3, "Uploads.no_face": 1, "RekognitionThrottles": 2},
        {"UploadLatencyMs": [120.0, 340.5]},
        timestamp_ms=1_700_000_000_000,
    )
    check_valid(doc)
    assert doc["_aws"]["Timestamp"] == 1_700_000_000_000
    assert doc["Uploads"] == 4
    assert doc["Uploads.matched"] == 3
    assert doc["Uploads.no_match"] == 0
    assert doc["RekognitionThrottles"] == 2
    assert doc["RekognitionRetries"] == 0
    assert doc["DLQSends"] == 0
    assert doc["ReferenceCacheRefreshes"] == 0
    assert doc["UploadLatencyMs"] == [120.0, 340.5]
    units = {m["Name"]: m["Unit"] for m in directive(doc)["Metrics"]}
    assert units["UploadLatencyMs"] == "Milliseconds"
    assert all(units[name] == "Count" for name in COUNTERS)
    assert doc["Service"] == "face-match-worker"


def test_an_idle_flush_still_writes_every_counter() -> None:
    [doc] = build_documents({}, {}, timestamp_ms=1)
    check_valid(doc)
    assert {m["Name"] for m in directive(doc)["Metrics"]} == set(COUNTERS)
    assert all(doc[name] == 0 for name in COUNTERS)


def test_more_than_100_samples_are_split_over_documents() -> None:
    samples = [float(i) for i in range(250)]
    docs = build_documents({"Uploads.matched": 250}, {"UploadLatencyMs": samples}, timestamp_ms=1)
    assert len(docs) == 3
    for doc in docs:
        check_valid(doc)
    assert docs[0]["Uploads"] == 250
    assert "Uploads" not in docs[1]  # counters once per flush, never counted twice
    joined = [v for doc in docs for v in doc["UploadLatencyMs"]]
    assert joined == samples


def test_more_than_100_metrics_are_split_over_documents() -> None:
    counts = {f"Custom{i}": i for i in range(150)}
    docs = build_documents(counts, {}, timestamp_ms=1)
    assert len(docs) == 2
    for doc in docs:
        check_valid(doc)
    names = [m["Name"] for doc in docs for m in directive(doc)["Metrics"]]
    assert len(names) == len(set(names)) == 150 + len(COUNTERS)


def test_exporter_drains_metrics_and_sources_once_per_flush() -> None:
    metrics, out = Metrics(), io.StringIO()
    refreshes = [2]
    exporter = EmfExporter(
        metrics, sources={"ReferenceCacheRefreshes": lambda: refreshes[0]}, stream=out
    )
    metrics.incr("RekognitionCalls", 5)
    metrics.observe("UploadLatencyMs", 42.0)
    exporter.flush()
    refreshes[0] = 3
    exporter.flush()
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["RekognitionCalls"] == 5
    assert first["ReferenceCacheRefreshes"] == 2
    assert first["UploadLatencyMs"] == [42.0]
    assert first["event"] == "emf_metrics"
    assert second["RekognitionCalls"] == 0
    assert second["ReferenceCacheRefreshes"] == 1
    assert "UploadLatencyMs" not in second


def test_a_failing_source_does_not_stop_the_flush() -> None:
    def broken() -> int:
        raise RuntimeError("boom")

    out = io.StringIO()
    EmfExporter(Metrics(), sources={"X": broken}, stream=out).flush()
    assert json.loads(out.getvalue())["RekognitionCalls"] == 0


def test_the_thread_flushes_periodically_and_close_flushes_the_rest() -> None:
    metrics, out = Metrics(), io.StringIO()
    exporter = EmfExporter(metrics, interval=0.05, stream=out).start()
    metrics.incr("DLQSends")
    deadline = time.monotonic() + 5
    while 'DLQSends":1' not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    metrics.incr("DuplicateDeliveries", 2)
    exporter.close()
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sum(d["DLQSends"] for d in docs) == 1
    assert sum(d["DuplicateDeliveries"] for d in docs) == 2


def test_every_result_status_has_its_upload_counter() -> None:
    from worker.results import Status
    from worker.telemetry.metrics import upload_status_metric

    assert {upload_status_metric(status.value) for status in Status} <= set(COUNTERS)
