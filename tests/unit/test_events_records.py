"""worker.events: each S3 record parsed on its own, and no body that crashes the parser."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.test_events_properties import documents, json_values, s3_like, sns
from worker.errors import BadMessageError
from worker.events import ParsedMessage, parse_body


def record(key: str, bucket: str = "photos", name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
    }


BAD = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "photos"}}}  # no object.key


def test_a_bad_record_is_set_apart_and_the_others_are_parsed() -> None:
    parsed = parse_body(json.dumps({"Records": [record("uploads/a b.png"), BAD, record("x/c")]}))
    assert [(o.key, o.record_index) for o in parsed.objects] == [("uploads/a b.png", 0), ("x/c", 2)]
    (problem,) = parsed.problems
    assert problem.index == 1
    assert "Records[1]" in problem.reason
    assert "s3.object.key" in problem.reason
    # The bad record alone, as a message of its own: refused with the same reason, index 0.
    assert json.loads(problem.body) == {"Records": [BAD]}
    with pytest.raises(BadMessageError, match=r"Records\[0\] lacks"):
        parse_body(problem.body)
    # Each record's own body names the same object.
    assert parse_body(parsed.record_bodies[2]).objects == (parsed.objects[1],)


def test_a_message_whose_every_record_is_bad_is_refused_whole_with_each_reason() -> None:
    with pytest.raises(BadMessageError) as refused:
        parse_body(json.dumps({"Records": [BAD, "x", record("")]}))
    reason = str(refused.value)
    assert "Records[0] lacks" in reason
    assert "Records[1] is not an object" in reason
    assert "Records[2] has an empty key" in reason


def test_a_single_record_message_needs_no_record_bodies() -> None:
    parsed = parse_body(json.dumps({"Records": [record("uploads/a.png")]}))
    assert parsed.record_bodies == ()
    assert parsed.problems == ()


# ------------------------------------------------------------------ bodies that crashed the parser

DIGITS = "1" * 5000
DEEP = 100_000


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (DIGITS, "cannot read"),
        (f'{{"Records": [{DIGITS}]}}', "cannot read"),
        ("[" * DEEP + "]" * DEEP, "nested too deeply"),
        ('{"a": ' * DEEP + "1" + "}" * DEEP, "nested too deeply"),
        (json.dumps({"Type": "Notification", "Message": DIGITS}), "cannot read"),
        (json.dumps({"Type": "Notification", "Message": "[" * DEEP}), "nested too deeply"),
    ],
    ids=[
        "5000-digits",
        "5000-digits-in-records",
        "deep-list",
        "deep-object",
        "sns-digits",
        "sns-deep",
    ],
)
def test_unreadable_json_is_a_bad_message_with_a_reason(body: str, words: str) -> None:
    with pytest.raises(BadMessageError, match=words):
        parse_body(body)


def _parsed_or_refused(body: str) -> ParsedMessage | None:
    """The one property: any body gives a ParsedMessage or a BadMessageError with a reason."""
    try:
        return parse_body(body)
    except BadMessageError as exc:
        reason = str(exc)
    assert reason, "a refusal must say why"
    return None


hostile_text = st.one_of(
    st.text(),
    st.integers(4000, 6000).map(lambda n: "9" * n),  # past Python's int/str conversion limit
    st.integers(1, 50_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 50_000).map(lambda n: '{"Records": ' + "[" * n),
    st.tuples(st.text(max_size=20), st.integers(4000, 5000)).map(
        lambda t: f'{{"Records": [{{"s3": {t[1] * "7"}, "x": {json.dumps(t[0])}}}]}}'
    ),
)


@settings(max_examples=200, deadline=None)
@given(hostile_text, st.integers(0, 2))
@example("1" * 5000, 0)
@example("[" * DEEP, 0)
@example("[" * DEEP, 1)
def test_any_text_even_unreadable_json_is_parsed_or_a_bad_message(body: str, wraps: int) -> None:
    for _ in range(wraps):
        body = json.dumps({"Type": "Notification", "Message": body})
    _parsed_or_refused(body)


mixed_records = st.lists(
    st.one_of(
        st.builds(record, st.text(min_size=1, max_size=30)),
        json_values,
        st.fixed_dictionaries({"eventName": json_values, "s3": json_values}),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(mixed_records.map(lambda rs: {"Records": rs}), s3_like, documents), st.booleans())
def test_records_are_judged_one_by_one(doc: Any, wrapped: bool) -> None:
    body = json.dumps(sns(doc) if wrapped else doc)
    parsed = _parsed_or_refused(body)
    if parsed is None or parsed.test_event:
        return
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        assert parsed.problems == ()
        return
    # Never every record bad (that refuses the message), and every bad record named once.
    assert len(parsed.problems) < len(records)
    assert sorted({p.index for p in parsed.problems}) == [p.index for p in parsed.problems]
    for problem in parsed.problems:
        assert f"Records[{problem.index}]" in problem.reason
        assert json.loads(problem.body) == {"Records": [records[problem.index]]}
        with pytest.raises(BadMessageError):
            parse_body(problem.body)  # the dead-lettered record is refused on its own too
    if len(records) > 1:
        assert len(parsed.record_bodies) == len(records)
        for ref in (*parsed.objects, *parsed.removed):
            assert parse_body(parsed.record_bodies[ref.record_index]).objects in ((ref,), ())
