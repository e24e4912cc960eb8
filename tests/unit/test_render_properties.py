"""Whatever the key and the labels, the SNS publish parameters stay valid."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.faces import Box, Candidate
from worker.render import MAX_PUBLISH_BYTES, MAX_SUBJECT_CHARS, Publication, publication, quoted
from worker.results import ResultRecord, build_record

keys = st.text(min_size=1, max_size=1016).filter(
    lambda k: len(k.encode("utf-8", "surrogatepass")) <= 1016
)
labels = st.lists(st.text(min_size=1, max_size=300), max_size=30, unique=True)
# Characters that cost the most once JSON-escaped twice, or that must be escaped for readers.
costly = st.sampled_from(['"', "\\", "\x01", "\n", "\u202e", "é", "日", "😀", "l"])


def make_record(key: str, names: list[str], faces: int, reference: str = "{}.jpg") -> ResultRecord:
    matches = [
        Candidate(
            name, "references/" + reference.format(name), 99.0 - i * 1e-3, Box(0.1, 0.1, 0.2, 0.2)
        )
        for i, name in enumerate(names)
    ]
    return build_record(
        bucket="photos",
        key="uploads/" + key,
        version_id=None,
        etag="e",
        faces_detected=max(faces, len(matches)) if matches else faces,
        matches=matches,
        threshold=80,
        references=len(names),
        strategy="compare",
        duration_ms=1,
    )


def check(record: ResultRecord, pub: Publication) -> None:
    """Valid for SNS, and what was sent is the record, or its best matches marked as cut."""
    assert 0 < len(pub.subject) <= MAX_SUBJECT_CHARS
    assert all(" " <= ch <= "~" for ch in pub.subject)
    total = len(pub.subject) + len(pub.message.encode())
    for name, value in pub.attributes.items():
        total += len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
    assert total <= MAX_PUBLISH_BYTES
    message = json.loads(pub.message)
    assert set(message) == {"default", "sqs", "email"}
    sent = json.loads(message["sqs"])
    kept = len(sent["matches"])
    truncated = sent.pop("matches_truncated", False)
    assert kept < len(record.matches) if truncated else kept == len(record.matches)
    doc = record.to_json()
    assert sent == dict(doc, matches=doc["matches"][:kept])
    assert json.loads(pub.attributes["labels"]["StringValue"]) == [
        m["label"] for m in sent["matches"]
    ]
    assert pub.attributes["labels"]["StringValue"].isascii()
    assert pub.attributes["status"]["StringValue"] == record.status
    email = message["email"]
    assert all(ch.isprintable() or ch == "\n" for ch in email)
    assert quoted(f"s3://photos/{record.key}") in email


@settings(max_examples=200, deadline=None)
@given(key=keys, names=labels, faces=st.integers(min_value=0, max_value=100))
def test_publish_parameters_are_always_valid(key: str, names: list[str], faces: int) -> None:
    record = make_record(key, names, faces)
    check(record, publication(record))


@settings(max_examples=40, deadline=None)
@given(
    char=costly,
    key_chars=st.integers(min_value=1, max_value=254),
    count=st.integers(min_value=0, max_value=3000),
    length=st.integers(min_value=1, max_value=240),
)
def test_any_number_and_length_of_labels_fits(
    char: str, key_chars: int, count: int, length: int
) -> None:
    # Up to 1,016 bytes of key (4-byte characters), labels and reference keys of any length.
    names = [f"{i}-" + char * length for i in range(count)]
    record = make_record(char * key_chars, names, 1, reference="{0}/{0}.jpg")
    check(record, publication(record))
