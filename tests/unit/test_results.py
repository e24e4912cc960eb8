from datetime import UTC, datetime

from worker.faces import Box, Candidate
from worker.matching import best_per_label
from worker.results import (
    AlreadyDone,
    ExistingRecord,
    Process,
    PublishPending,
    Superseded,
    WaitForWriter,
    build_record,
    decide,
    result_key,
)


def existing(
    upload_id: str = "e1", notified: bool = True, age: float = 1.0, seq: str | None = None
):
    return ExistingRecord(
        etag="rec", upload_id=upload_id, sequencer=seq, notified=notified, age_seconds=age
    )


def test_result_key_mirrors_the_upload_key() -> None:
    assert result_key("uploads/party 1.jpg", "results/") == "results/uploads/party 1.jpg.json"


def test_result_key_past_the_s3_limit_uses_a_digest() -> None:
    long_key = "uploads/" + "é" * 508  # 1,024 bytes: the upload is valid, the result name is not
    key = result_key(long_key, "results/")
    assert key.startswith("results/_long/") and key.endswith(".json")
    assert len(key.encode()) <= 1024
    assert key == result_key(long_key, "results/")


def test_decisions() -> None:
    assert decide(None, "e1") == Process(expect_etag=None)
    assert decide(existing(), "e1") == AlreadyDone()
    assert decide(existing(upload_id="old"), "e1") == Process(expect_etag="rec")
    assert decide(existing(notified=False, age=500), "e1") == PublishPending(record_etag="rec")
    waiting = decide(existing(notified=False, age=20), "e1", lease_seconds=120)
    assert isinstance(waiting, WaitForWriter) and waiting.seconds == 100


def test_an_older_event_does_not_replace_a_newer_record() -> None:
    newer = existing(upload_id="v2", seq="00A1")
    assert decide(newer, "v1", sequencer="009F") == Superseded()
    assert decide(newer, "v3", sequencer="00B0") == Process(expect_etag="rec")


def test_best_per_label_keeps_one_entry_per_label_sorted() -> None:
    box = Box(0, 0, 1, 1)
    candidates = [
        Candidate("bob", "references/bob/1.jpg", 85.0, box),
        Candidate("bob", "references/bob/2.jpg", 97.5, box),
        Candidate("alice", "references/alice.jpg", 99.0, box),
        Candidate("carol", "references/carol.jpg", 79.9, box),
    ]
    best = best_per_label(candidates, threshold=80)
    assert [(c.label, c.reference_key) for c in best] == [
        ("alice", "references/alice.jpg"),
        ("bob", "references/bob/2.jpg"),
    ]


def test_record_statuses() -> None:
    common = dict(
        bucket="b",
        key="uploads/k",
        version_id=None,
        etag="e",
        threshold=80,
        references=2,
        strategy="compare",
        duration_ms=5,
        now=datetime(2026, 11, 26, 22, 0, tzinfo=UTC),
    )
    match = [Candidate("a", "references/a.jpg", 99.04, Box(0.1, 0.2, 0.3, 0.4))]
    assert build_record(faces_detected=1, matches=match, **common)["status"] == "matched"
    assert build_record(faces_detected=2, matches=[], **common)["status"] == "no_match"
    assert build_record(faces_detected=0, matches=[], **common)["status"] == "no_face"
    bad = build_record(faces_detected=0, matches=[], reason="empty object", invalid=True, **common)
    assert (bad["status"], bad["reason"]) == ("invalid_image", "empty object")
    rec = build_record(faces_detected=1, matches=match, **common)
    assert rec["matches"][0] == {
        "label": "a",
        "reference_key": "references/a.jpg",
        "similarity": 99.0,
        "face": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4},
    }
    assert rec["processed_at"] == "2026-11-26T22:00:00Z"
    assert rec["schema"] == "face-match-result/1"
