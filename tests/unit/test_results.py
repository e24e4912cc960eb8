import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.record_schema import validate_record
from worker import render
from worker.faces import Box, Candidate
from worker.matching import best_per_label
from worker.results import (
    AlreadyDone,
    ExistingRecord,
    Process,
    PublishPending,
    ResultRecord,
    Status,
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
    assert build_record(faces_detected=1, matches=match, **common).status == "matched"
    assert build_record(faces_detected=2, matches=[], **common).status == "no_match"
    assert build_record(faces_detected=0, matches=[], **common).status == "no_face"
    bad = build_record(faces_detected=0, matches=[], reason="empty object", invalid=True, **common)
    assert (bad.status, bad.reason) == (Status.INVALID_IMAGE, "empty object")
    validate_record(bad.to_json())
    for faces, found in ((1, match), (2, []), (0, [])):
        validate_record(build_record(faces_detected=faces, matches=found, **common).to_json())
    with pytest.raises(ValueError, match="reason"):
        build_record(faces_detected=0, matches=[], invalid=True, **common)
    rec = build_record(faces_detected=1, matches=match, **common)
    assert rec.to_json()["matches"][0] == {
        "label": "a",
        "reference_key": "references/a.jpg",
        "similarity": 99.0,
        "face": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4},
    }
    assert rec.processed_at == "2026-11-26T22:00:00Z"
    assert rec.to_json()["schema"] == "face-match-result/1"


def sample(**overrides: object) -> ResultRecord:
    record = build_record(
        bucket="photos",
        key="uploads/zoë party.jpg",
        version_id="v1",
        etag="abc",
        faces_detected=2,
        matches=[
            Candidate("alice", "references/alice.jpg", 99.24, Box(0.12345, 0.2, 0.3, 0.45678)),
            Candidate("bob", "references/bob/1.jpg", 85.06, Box(0.5, 0.5, 0.1, 0.1)),
        ],
        threshold=80,
        references=3,
        strategy="compare",
        duration_ms=1234,
        now=datetime(2026, 11, 26, 22, 0, 5, 123, tzinfo=UTC),
    )
    return replace(record, **overrides)


# The bytes of the S3 object and the SNS message: the same since before the record had a type.
SAMPLE_BODY = (
    '{"schema":"face-match-result/1","bucket":"photos","key":"uploads/zoë party.jpg",'
    '"version_id":"v1","etag":"abc","status":"matched","reason":null,"faces_detected":2,'
    '"matches":[{"label":"alice","reference_key":"references/alice.jpg","similarity":99.2,'
    '"face":{"left":0.1235,"top":0.2,"width":0.3,"height":0.4568}},'
    '{"label":"bob","reference_key":"references/bob/1.jpg","similarity":85.1,'
    '"face":{"left":0.5,"top":0.5,"width":0.1,"height":0.1}}],"threshold":80.0,"references":3,'
    '"strategy":"compare","processed_at":"2026-11-26T22:00:05Z","duration_ms":1234,'
    '"notification_id":"00000000000000000000000000000000"}'
)


def test_the_record_serialises_to_the_contracts_json_byte_for_byte() -> None:
    record = sample(notification_id="0" * 32)
    validate_record(record.to_json())
    assert json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) == SAMPLE_BODY
    # S3 body (store.write) and SNS message (render) are these fields, in this order.
    assert json.dumps(record.to_json(), ensure_ascii=False, indent=2) == json.dumps(
        json.loads(SAMPLE_BODY), ensure_ascii=False, indent=2
    )
    message = json.loads(render.publication(record).message)
    assert message["sqs"] == message["default"] == SAMPLE_BODY
    cut = json.dumps(replace(record, matches_truncated=True).to_json(), separators=(",", ":"))
    assert cut.endswith(
        '"notification_id":"00000000000000000000000000000000","matches_truncated":true}'
    )


def test_status_is_derived_from_the_facts() -> None:
    assert sample().status == Status.MATCHED
    assert sample(matches=()).status == Status.NO_MATCH
    assert sample(matches=(), faces_detected=0).status == Status.NO_FACE
    assert sample(reason="").status == Status.INVALID_IMAGE  # a reason, even empty, rejects
    assert "notification_id" not in sample().to_json()
    assert "matches_truncated" not in sample().to_json()


def test_a_stored_record_reads_back_as_written() -> None:
    for record in (sample(), sample(notification_id="1" * 32, matches_truncated=True)):
        doc = validate_record(json.loads(json.dumps(record.to_json())))
        assert ResultRecord.from_json(doc) == record
        assert ResultRecord.from_json(doc).to_json() == doc


def test_a_stored_record_whose_status_disagrees_is_rejected() -> None:
    doc = sample().to_json()
    with pytest.raises(ValueError, match="status"):
        ResultRecord.from_json({**doc, "status": "no_match"})
    with pytest.raises(ValueError, match="malformed"):
        ResultRecord.from_json({k: v for k, v in doc.items() if k != "bucket"})
    with pytest.raises(ValueError, match="schema"):
        ResultRecord.from_json({**doc, "schema": "face-match-result/2"})


def test_each_write_to_publish_gets_a_new_notification_id() -> None:
    first, second = sample().with_notification_id(), sample().with_notification_id()
    assert first.notification_id and second.notification_id
    assert len(first.notification_id) == 32
    assert first.notification_id != second.notification_id
    assert replace(first, notification_id=None) == sample()
