"""Pipeline.handle's outcome for a message of several S3 records, some of them bad."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any

import pytest

from worker.events import ObjectRef
from worker.outcomes import Ack, DeadLetter, Outcome, Partial, Resend, RetryLater, combine
from worker.pipeline import Pipeline
from worker.settings import load_settings
from worker.telemetry.metrics import Metrics


def record(key: str) -> dict[str, Any]:
    return {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "photos"}, "object": {"key": key}},
    }


BAD = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "photos"}, "object": {}}}


def scripted(monkeypatch: pytest.MonkeyPatch, script: dict[str, Outcome]) -> Pipeline:
    """A pipeline whose uploads end as ``script`` says (key → outcome); it records the calls."""
    settings = load_settings(bucket_name="photos", sns_topic_arn="arn:aws:sns:us-east-1:1:t")
    # Only settings and metrics are used before handle_object; the collaborators stay None.
    parts: dict[str, Any] = {f.name: None for f in fields(Pipeline) if f.default is MISSING}
    pipeline = Pipeline(**{**parts, "settings": settings, "metrics": Metrics()})
    seen: list[str] = []

    def handle_object(ref: ObjectRef) -> Outcome:
        seen.append(ref.key)
        return script[ref.key]

    monkeypatch.setattr(pipeline, "handle_object", handle_object)
    pipeline.seen = seen  # type: ignore[attr-defined]
    return pipeline


def test_the_good_records_are_processed_and_the_bad_one_alone_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = scripted(monkeypatch, {"uploads/a.png": Ack(), "uploads/c.png": Ack()})
    body = json.dumps({"Records": [record("uploads/a.png"), BAD, record("uploads/c.png")]})

    outcome = pipeline.handle(body)

    assert pipeline.seen == ["uploads/a.png", "uploads/c.png"]  # type: ignore[attr-defined]
    assert isinstance(outcome, Partial)
    assert outcome.rest == Ack()
    assert outcome.resends == ()
    (dead,) = outcome.dead_letters
    assert dead.error_type == "BadMessage"
    assert "Records[1] lacks s3.bucket.name or s3.object.key" in dead.error_message
    assert "of a message of 3 records" in dead.error_message
    assert dead.body is not None
    assert json.loads(dead.body) == {"Records": [BAD]}


def test_records_to_retry_are_carried_each_with_its_own_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later = RetryLater(reason="throttled", delay=7)
    pipeline = scripted(monkeypatch, {"uploads/a.png": later, "uploads/c.png": Ack()})
    body = json.dumps({"Records": [record("uploads/a.png"), BAD, record("uploads/c.png")]})

    outcome = pipeline.handle(body)

    assert isinstance(outcome, Partial)
    assert outcome.rest == later
    assert outcome.resends == (Resend(json.dumps({"Records": [record("uploads/a.png")]}), later),)
    assert len(outcome.dead_letters) == 1


def test_without_a_bad_record_the_outcomes_combine_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later = RetryLater(reason="throttled")
    pipeline = scripted(monkeypatch, {"uploads/a.png": later, "uploads/c.png": Ack()})
    body = json.dumps({"Records": [record("uploads/a.png"), record("uploads/c.png")]})
    assert pipeline.handle(body) == combine([later, Ack()]) == later


def test_an_object_that_is_dead_lettered_takes_only_its_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = DeadLetter("InvalidThing", "no")
    pipeline = scripted(monkeypatch, {"uploads/a.png": dead, "uploads/c.png": Ack()})
    two = json.dumps({"Records": [record("uploads/a.png"), record("uploads/c.png")]})
    outcome = pipeline.handle(two)
    assert outcome == Partial(
        dead_letters=(
            DeadLetter("InvalidThing", "no", json.dumps({"Records": [record("uploads/a.png")]})),
        ),
        rest=Ack(),
    )
    # A message of that record alone is dead-lettered as it is.
    assert pipeline.handle(json.dumps({"Records": [record("uploads/a.png")]})) == dead


def test_a_message_of_bad_records_only_is_dead_lettered_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = scripted(monkeypatch, {})
    outcome = pipeline.handle(json.dumps({"Records": [BAD, BAD]}))
    assert isinstance(outcome, DeadLetter)
    assert outcome.body is None  # the message's own body
    assert "Records[0]" in outcome.error_message
    assert "Records[1]" in outcome.error_message


@pytest.mark.parametrize("body", ["1" * 5000, "[" * 100_000])
def test_a_body_that_crashed_the_parser_is_dead_lettered_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    outcome = scripted(monkeypatch, {}).handle(body)
    assert isinstance(outcome, DeadLetter)
    assert outcome.error_type == "BadMessage"
    assert outcome.error_message
