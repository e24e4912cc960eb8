"""Result records for tests: :func:`worker.results.build_record` with defaults for the fields a
test does not look at (an upload in ``photos`` with no face)."""

from __future__ import annotations

from typing import Any

from worker.results import ResultRecord, build_record

DEFAULTS: dict[str, Any] = {
    "bucket": "photos",
    "key": "uploads/x.jpg",
    "version_id": None,
    "etag": "e",
    "faces_detected": 0,
    "matches": (),
    "threshold": 80,
    "references": 0,
    "strategy": "compare",
    "duration_ms": 5,
}


def a_record(**fields: Any) -> ResultRecord:
    return build_record(**{**DEFAULTS, **fields})
