import json
from dataclasses import replace

import pytest

from worker import render
from worker.faces import Box, Candidate
from worker.render import (
    MAX_PUBLISH_BYTES,
    MAX_SUBJECT_CHARS,
    Publication,
    email_text,
    publication,
    quoted,
    subject,
)
from worker.results import ResultRecord, build_record


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
    rejected = replace(record(labels=(), faces=0), reason="empty object")
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
    pub = publication(rec)
    message = json.loads(pub.message)
    assert set(message) == {"default", "sqs", "email"}
    assert json.loads(message["sqs"]) == rec.to_json()
    assert json.loads(message["default"]) == rec.to_json()
    assert '"alice": 99.2% similar' in message["email"]
    assert pub.subject == subject(rec)
    attributes = pub.attributes
    assert attributes["status"] == {"DataType": "String", "StringValue": "matched"}
    assert json.loads(attributes["labels"]["StringValue"]) == ["alice", "bob"]


def test_email_for_each_status_names_the_upload() -> None:
    for rec in (record(), record(labels=()), record(labels=(), faces=0)):
        assert "s3://photos/uploads/party 1.jpg" in email_text(rec)
    rejected = replace(record(labels=(), faces=0), reason="empty object")
    assert "empty object" in email_text(rejected)


def test_huge_match_lists_are_trimmed_to_fit_sns() -> None:
    rec = record(
        key="uploads/" + "k" * 1000, labels=tuple(f"person-{i}-" + "x" * 400 for i in range(900))
    )
    pub = publication(rec)
    assert _total_bytes(pub) <= MAX_PUBLISH_BYTES
    assert json.loads(json.loads(pub.message)["sqs"])["matches_truncated"] is True


FORGED = "x.jpg\n\nSECURITY NOTICE: sign in again at https://evil.example\r\u2028\u2029\x85\t\u202e\u2066"


def _email_of(rec: ResultRecord) -> str:
    return str(json.loads(publication(rec).message)["email"])


@pytest.mark.parametrize("status", ["matched", "no_match", "no_face", "invalid_image"])
def test_user_data_cannot_forge_email_lines(status: str) -> None:
    labels = (FORGED,) if status == "matched" else ()
    rec = record(key="uploads/" + FORGED, labels=labels, faces=0 if status == "no_face" else 1)
    if status == "invalid_image":
        rec = replace(rec, reason="Rekognition said:\nSECURITY NOTICE \u202e")
    assert rec.status == status
    clean = record(key="uploads/x.jpg", labels=("x",) if labels else (), faces=rec.faces_detected)
    if status == "invalid_image":
        clean = replace(clean, reason="empty object")
    for text in (email_text(rec), _email_of(rec)):
        assert text.count("\n") == email_text(clean).count("\n"), text
        assert all(ch.isprintable() or ch == "\n" for ch in text), text
        assert not any(line.startswith("SECURITY") for line in text.splitlines())
        assert "\\u202e" in text
    # Keys are quoted with visible escapes; the record for machines keeps the exact key.
    assert '"s3://photos/uploads/x.jpg\\n\\nSECURITY NOTICE' in email_text(rec)
    assert json.loads(json.loads(publication(rec).message)["sqs"])["key"] == "uploads/" + FORGED
    if labels:
        assert '"x.jpg\\n\\nSECURITY NOTICE' in email_text(rec)
        assert '(reference "references/x.jpg\\n\\n' in email_text(rec)


def test_quoting_is_visible_and_reversible_for_readers() -> None:
    assert quoted('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert quoted("zoë 日本 😀") == '"zoë 日本 😀"'
    assert quoted("\u0301x\u00a0y\u200b") == '"\\u0301x\\xa0y\\u200b"'
    assert quoted("\U000e0041") == '"\\U000e0041"'


def _total_bytes(pub: Publication) -> int:
    """What SNS counts: subject, message, and every attribute's name, type and value."""
    size = len(pub.subject.encode()) + len(pub.message.encode())
    for name, attribute in pub.attributes.items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        size += len(attribute["StringValue"].encode())
    return size


def _many(count: int) -> ResultRecord:
    labels = tuple(f"{i:03d}-" + "l" * 36 for i in range(count))  # 40 characters each
    rec = record(key="uploads/" + "k" * 1000, labels=labels)
    return replace(
        rec,
        matches=tuple(
            replace(m, reference_key=f"references/{m.label}/portrait.jpg") for m in rec.matches
        ),
    )


def test_total_size_counts_the_attributes_too() -> None:
    # Issue 11: 400 labels of 40 characters made 266,304 bytes in all, the message alone fitting.
    pub = publication(_many(400))
    assert pub.size() == _total_bytes(pub) <= MAX_PUBLISH_BYTES


def test_the_labels_attribute_is_trimmed_with_the_record() -> None:
    rec = _many(520)
    whole = render._publication(rec, subject(rec), len(rec.matches))
    attribute_bytes = whole.size() - len(whole.subject) - len(whole.message.encode())
    assert whole.size() - attribute_bytes < MAX_PUBLISH_BYTES < whole.size()  # attributes tip it
    pub = publication(rec)
    assert pub.size() == _total_bytes(pub) <= MAX_PUBLISH_BYTES
    sent = json.loads(json.loads(pub.message)["sqs"])
    assert sent["matches_truncated"] is True
    assert 0 < len(sent["matches"]) < 520
    assert sent["matches"] == [m.to_json() for m in rec.matches[: len(sent["matches"])]]
    assert json.loads(pub.attributes["labels"]["StringValue"]) == [
        m["label"] for m in sent["matches"]
    ]
    assert pub.subject == subject(rec)  # the Subject still counts every match
    assert "cut to fit" in json.loads(pub.message)["email"]


def test_a_record_that_fits_is_sent_whole() -> None:
    rec = record(labels=tuple(f"person-{i}" for i in range(100)))
    pub = publication(rec)
    assert json.loads(json.loads(pub.message)["sqs"]) == rec.to_json()
    assert len(json.loads(pub.attributes["labels"]["StringValue"])) == 100
    assert "and 50 more" in json.loads(pub.message)["email"]
