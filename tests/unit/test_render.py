import json

import pytest

from worker.faces import Box, Candidate
from worker.render import (
    MAX_MESSAGE_BYTES,
    MAX_SUBJECT_CHARS,
    email_text,
    message_attributes,
    sns_message,
    subject,
)
from worker.results import build_record


def record(key: str = "uploads/party 1.jpg", labels: tuple[str, ...] = ("alice",), faces: int = 1):
    matches = [
        Candidate(label, f"references/{label}.jpg", 99.24 - i, Box(0.1, 0.2, 0.3, 0.4))
        for i, label in enumerate(labels)
    ]
    return build_record(
        bucket="photos",
        key=key,
        version_id=None,
        etag="abc",
        faces_detected=faces,
        matches=matches,
        threshold=80,
        references=3,
        strategy="compare",
        duration_ms=12,
    )


def test_subjects_per_status() -> None:
    assert subject(record()) == "Match: alice (99.2%) in uploads/party 1.jpg"
    assert subject(record(labels=())) == "No match: uploads/party 1.jpg"
    assert subject(record(labels=(), faces=0)) == "No face: uploads/party 1.jpg"
    rejected = dict(record(labels=(), faces=0), status="invalid_image")
    assert subject(rejected) == "Rejected: uploads/party 1.jpg"
    assert (
        subject(record(labels=("alice", "bob"))) == "Match: alice (99.2%) +1 in uploads/party 1.jpg"
    )


@pytest.mark.parametrize(
    "key",
    [
        "uploads/" + "x" * 1000 + ".jpg",
        "uploads/zoë/日本\n\t\x00.jpg",
        "uploads/\u202e\u200b.jpg",
    ],
)
def test_subject_is_always_valid_for_sns(key: str) -> None:
    for rec in (record(key), record(key, labels=("é" * 300,)), record(key, labels=())):
        text = subject(rec)
        assert 0 < len(text) <= MAX_SUBJECT_CHARS
        assert all(" " <= ch <= "~" for ch in text), text


def test_long_label_still_leaves_the_key_visible() -> None:
    text = subject(record("uploads/a.jpg", labels=("l" * 200,)))
    assert text.endswith(" in uploads/a.jpg")


def test_message_structure_and_attributes() -> None:
    rec = record(labels=("alice", "bob"))
    message = json.loads(sns_message(rec))
    assert set(message) == {"default", "sqs", "email"}
    assert json.loads(message["sqs"]) == rec
    assert json.loads(message["default"]) == rec
    assert "alice: 99.2% similar" in message["email"]
    attributes = message_attributes(rec)
    assert attributes["status"] == {"DataType": "String", "StringValue": "matched"}
    assert json.loads(attributes["labels"]["StringValue"]) == ["alice", "bob"]


def test_email_for_each_status_names_the_upload() -> None:
    for rec in (record(), record(labels=()), record(labels=(), faces=0)):
        assert "s3://photos/uploads/party 1.jpg" in email_text(rec)
    rejected = dict(record(labels=(), faces=0), status="invalid_image", reason="empty object")
    assert "empty object" in email_text(rejected)


def test_huge_match_lists_are_trimmed_to_fit_sns() -> None:
    rec = record(
        key="uploads/" + "k" * 1000, labels=tuple(f"person-{i}-" + "x" * 400 for i in range(900))
    )
    message = sns_message(rec)
    assert len(message.encode()) < MAX_MESSAGE_BYTES
    assert json.loads(json.loads(message)["sqs"])["matches_truncated"] is True
