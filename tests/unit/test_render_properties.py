"""Whatever the key and the labels, the SNS publish parameters stay valid."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.faces import Box, Candidate
from worker.render import (
    MAX_MESSAGE_BYTES,
    MAX_SUBJECT_CHARS,
    message_attributes,
    sns_message,
    subject,
)
from worker.results import build_record

keys = st.text(min_size=1, max_size=1016).filter(
    lambda k: len(k.encode("utf-8", "surrogatepass")) <= 1016
)
labels = st.lists(st.text(min_size=1, max_size=300), max_size=30, unique=True)


@settings(max_examples=200, deadline=None)
@given(key=keys, names=labels, faces=st.integers(min_value=0, max_value=100))
def test_publish_parameters_are_always_valid(key: str, names: list[str], faces: int) -> None:
    matches = [
        Candidate(name, f"references/{name}.jpg", 99.0 - i * 0.5, Box(0.1, 0.1, 0.2, 0.2))
        for i, name in enumerate(names)
    ]
    record = build_record(
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
    text = subject(record)
    assert 0 < len(text) <= MAX_SUBJECT_CHARS
    assert all(" " <= ch <= "~" for ch in text)
    message = sns_message(record)
    assert len(message.encode("utf-8", "surrogatepass")) <= MAX_MESSAGE_BYTES
    assert set(json.loads(message)) == {"default", "sqs", "email"}
    attributes = message_attributes(record)
    assert json.loads(attributes["labels"]["StringValue"]) == names
    assert attributes["status"]["StringValue"] == record["status"]
