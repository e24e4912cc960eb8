"""Captured and documented event JSON (tests/fixtures/events) → the object each one names."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.events import parse_body

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
KEY = "uploads/party 1+ü.jpg"


@pytest.mark.parametrize(
    ("name", "key", "etag", "version", "sequencer", "envelope"),
    [
        ("aws-s3-put.json", KEY, "d41d8cd98f00b204e9800998ecf8427e",
         "096fKKXTRTtl3on89fVO.nfljtsv6qko", "0055AED6DCD90281E5", "s3"),
        ("aws-eventbridge-object-created.json", KEY, "d41d8cd98f00b204e9800998ecf8427e",
         "096fKKXTRTtl3on89fVO.nfljtsv6qko", "0055AED6DCD90281E5", "eventbridge"),
        ("moto-s3-put.json", KEY, "9dd4e461268c8034f5c8564e155c67a6", None, None, "s3"),
        ("moto-sns-wrapped-s3-put.json", "uploads/via sns.jpg",
         "415290769594460e2e485922904f345d", None, None, "sns"),
    ],
)  # fmt: skip
def test_each_shape_names_its_object(
    name: str, key: str, etag: str, version: str | None, sequencer: str | None, envelope: str
) -> None:
    parsed = parse_body((FIXTURES / name).read_text())
    (ref,) = parsed.objects
    assert (ref.bucket, ref.key, ref.etag) == ("photos", key, etag)
    assert (ref.version_id, ref.sequencer, parsed.envelope) == (version, sequencer, envelope)


def test_the_test_event_sent_when_notifications_are_configured_is_only_acknowledged() -> None:
    parsed = parse_body((FIXTURES / "moto-s3-testevent.json").read_text())
    assert parsed.test_event
    assert parsed.objects == ()
