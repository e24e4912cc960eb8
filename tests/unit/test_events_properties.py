"""Property tests over worker.events.parse_body: any input gives a ParsedMessage or BadMessageError."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.errors import BadMessageError
from worker.events import MAX_KEY_BYTES, ParsedMessage, parse_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
# Documents that look like the shapes parse_body knows, with any value in any slot.
s3_like = st.fixed_dictionaries(
    {
        "Records": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "eventName": json_values
                        | st.sampled_from(
                            ["ObjectCreated:Put", "ObjectRemoved:Delete", "ObjectRestore:Post"]
                        ),
                        "s3": json_values
                        | st.fixed_dictionaries(
                            {
                                "bucket": json_values
                                | st.fixed_dictionaries({"name": json_values}),
                                "object": json_values
                                | st.fixed_dictionaries(
                                    {
                                        "key": json_values,
                                        "size": json_values,
                                        "eTag": json_values,
                                        "versionId": json_values,
                                    }
                                ),
                            }
                        ),
                    }
                ),
                max_size=3,
            ),
        )
    }
)
eventbridge_like = st.fixed_dictionaries(
    {
        "source": st.just("aws.s3"),
        "detail-type": json_values | st.sampled_from(["Object Created", "Object Deleted"]),
        "detail": json_values
        | st.fixed_dictionaries(
            {
                "bucket": json_values | st.fixed_dictionaries({"name": json_values}),
                "object": json_values | st.fixed_dictionaries({"key": json_values}),
            }
        ),
    }
)
documents = st.one_of(
    json_values,
    s3_like,
    eventbridge_like,
    st.fixed_dictionaries({"Event": st.just("s3:TestEvent")}),
)


def sns(doc: Any) -> Any:
    return {"Type": "Notification", "Message": json.dumps(doc) if not isinstance(doc, str) else doc}


def _check(body: str) -> ParsedMessage | None:
    try:
        parsed = parse_body(body)
    except BadMessageError as exc:
        reason = str(exc)
    else:
        return _checked(parsed)
    assert reason, "a refusal must say why"
    return None


def _checked(parsed: ParsedMessage) -> ParsedMessage:
    assert isinstance(parsed, ParsedMessage)
    for ref in (*parsed.objects, *parsed.removed):
        assert isinstance(ref.bucket, str)
        assert isinstance(ref.key, str)
        assert ref.key
        assert len(ref.key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES
    return parsed


@settings(max_examples=300)
@given(st.text())
@example("")
@example("null")
@example("[]")
@example('"Records"')
@example("1e999")
@example('{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "%"}}}]}')
def test_any_text_is_parsed_or_refused_with_bad_message(body: str) -> None:
    _check(body)


@settings(max_examples=300)
@given(documents, st.integers(0, 4))
def test_any_json_document_is_parsed_or_refused_with_bad_message(doc: Any, wraps: int) -> None:
    for _ in range(wraps):
        doc = sns(doc)
    _check(json.dumps(doc))


@settings(max_examples=300)
@given(
    keys=st.lists(
        st.text(st.characters(codec="utf-8"), min_size=1).filter(
            lambda k: len(k.encode()) <= MAX_KEY_BYTES
        ),
        min_size=1,
        max_size=4,
    ),
    bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True),
    wrapped=st.booleans(),
)
def test_keys_round_trip_through_quote_plus(keys: list[str], bucket: str, wrapped: bool) -> None:
    doc: Any = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}},
            }
            for key in keys
        ]
    }
    if wrapped:
        doc = sns(doc)
    parsed = parse_body(json.dumps(doc))
    assert [ref.key for ref in parsed.objects] == keys
    assert {ref.bucket for ref in parsed.objects} == {bucket}
    assert parsed.envelope == ("sns" if wrapped else "s3")


@given(key=st.text(st.characters(codec="utf-8"), min_size=1, max_size=300))
def test_eventbridge_keys_are_taken_as_they_are(key: str) -> None:
    doc = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "photos"}, "object": {"key": key}},
    }
    if len(key.encode()) > MAX_KEY_BYTES:
        return
    assert parse_body(json.dumps(doc)).objects[0].key == key


@given(extra=st.integers(1, 50))
def test_keys_over_1024_bytes_are_refused(extra: int) -> None:
    key = "é" * ((MAX_KEY_BYTES + extra) // 2 + 1)
    doc = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": quote_plus(key)}},
            }
        ]
    }
    with pytest.raises(BadMessageError, match="1024"):
        parse_body(json.dumps(doc))


def _record(bucket: str, raw_key: str) -> str:
    return json.dumps(
        {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": raw_key}}}]}
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "\\ud800x"}}}]}',
        _record("", "uploads/a.jpg"),
    ],
    ids=["lone-surrogate-key", "empty-bucket"],
)
def test_objects_s3_cannot_hold_are_bad_messages(body: str) -> None:
    with pytest.raises(BadMessageError):
        parse_body(body)
