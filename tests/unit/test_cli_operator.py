"""The pure parts of `worker results`, `worker upload` and `worker status`: --since, the table,
which record is an upload's, the status lines."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.records import a_record
from worker.cli import results, status, upload
from worker.faces import Box, Candidate

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - timedelta(seconds=30)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("1w", NOW - timedelta(days=7)),
        ("2026-04-30", datetime(2026, 4, 30, tzinfo=UTC)),
        ("2026-04-30T10:00:00Z", datetime(2026, 4, 30, 10, tzinfo=UTC)),
        ("2026-04-30T12:00:00+02:00", datetime(2026, 4, 30, 10, tzinfo=UTC)),
    ],
)
def test_since_takes_durations_and_iso_times(text: str, expected: datetime) -> None:
    assert results.parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10", "5 parsecs", ""])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="neither a duration"):
        results.parse_since(text, NOW)


def test_rows_are_one_line_each_and_the_table_aligns_them() -> None:
    matched = a_record(
        key="uploads/a\nb.jpg",
        faces_detected=1,
        matches=[Candidate("ada", "references/ada.jpg", 97.04, Box(0, 0, 1, 1))],
    )
    none = a_record(key="uploads/long-name.jpg", faces_detected=0)
    rows = [results.row(matched), results.row(none)]
    assert rows[0][2] == "uploads/a\\nb.jpg"
    assert rows[0][3] == "ada (97.0%)"
    assert rows[0][4] == "Match: ada (97.0%) in uploads/a?b.jpg"  # the SNS subject, as sent
    lines = results.table([results.HEADER, *rows])
    starts = {line.index("uploads/") for line in lines[1:]}
    assert len(starts) == 1 and lines[0].index("KEY") in starts


def test_an_upload_knows_its_own_record_by_version_or_etag() -> None:
    record = a_record(key="uploads/x.jpg", etag="abc", version_id=None)
    assert upload.Uploaded("uploads/x.jpg", "abc", None).made(record)
    assert not upload.Uploaded("uploads/x.jpg", "newer", None).made(record)
    versioned = a_record(key="uploads/x.jpg", etag="abc", version_id="v2")
    assert upload.Uploaded("uploads/x.jpg", "abc", "v2").made(versioned)
    assert not upload.Uploaded("uploads/x.jpg", "abc", "v3").made(versioned)


def test_keys_are_the_prefix_and_the_file_name_or_the_key_given() -> None:
    files = [Path("a/one.jpg"), Path("b/two.png")]
    assert list(upload.object_keys(files, "uploads/", None)) == [
        "uploads/one.jpg",
        "uploads/two.png",
    ]
    assert list(upload.object_keys(files[:1], "uploads/", "team/x.jpg")) == ["uploads/team/x.jpg"]
    assert list(upload.object_keys(files[:1], "uploads/", "uploads/x.jpg")) == ["uploads/x.jpg"]


def test_show_accepts_the_upload_key_its_s3_name_or_its_record_key() -> None:
    for text in ("uploads/p.jpg", "s3://b/uploads/p.jpg", "results/uploads/p.jpg.json"):
        assert results.upload_key(text, "b", "results/") == "uploads/p.jpg"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5.9, "5s"), (192, "3m 12s"), (7500, "2h 5m"), (273600, "3d 4h")],
)
def test_ages_read_like_a_person_would_say_them(seconds: float, text: str) -> None:
    assert status.age_text(seconds) == text


def test_status_lines_name_each_part_and_say_why_one_failed() -> None:
    report = {
        "queue": {"url": "http://q/1/jobs", "waiting": 3, "in_flight": 1, "delayed": 0},
        "dead_letter_queue": {
            "url": "http://q/1/jobs-dlq",
            "messages": 2,
            "oldest_sent_at": "2026-05-01T11:57:00Z",
            "oldest_age_seconds": 180.0,
        },
        "references": {"error": "AccessDenied: no"},
        "collection": {"id": "c", "strategy": "auto", "exists": False, "faces": 0},
        "results": {
            "minutes": 60,
            "total": 3,
            "by_status": {"matched": 2, "no_match": 0, "no_face": 1, "invalid_image": 0},
            "not_records": 0,
        },
    }
    assert status.text_lines(report) == [
        "Queue         jobs: 3 waiting, 1 in flight, 0 delayed",
        "Dead letters  jobs-dlq: 2 messages, oldest sent 3m 0s ago",
        "References    error: AccessDenied: no",
        "Collection    c (STRATEGY=auto): not created yet; `worker references sync` creates it",
        "Results       last 60 min: 3 (matched 2, no_face 1)",
    ]
