import json
from urllib.parse import quote_plus

import pytest

from worker.errors import BadMessageError
from worker.events import parse_body


def s3_event(*keys: str, bucket: str = "photos", name: str = "ObjectCreated:Put") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": name,
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {
                            "key": quote_plus(key),
                            "eTag": "abc",
                            "size": 10,
                            "versionId": "v1",
                            "sequencer": "0A",
                        },
                    },
                }
                for key in keys
            ]
        }
    )


@pytest.mark.parametrize(
    "key",
    ["uploads/party 1.jpg", "uploads/a+b.jpg", "uploads/100%.jpg", "uploads/zoë/日本.jpg"],
)
def test_keys_are_decoded_exactly_once(key: str) -> None:
    parsed = parse_body(s3_event(key))
    assert [o.key for o in parsed.objects] == [key]
    assert parsed.objects[0].etag == "abc"
    assert parsed.objects[0].version_id == "v1"
    assert parsed.objects[0].sequencer == "0A"


def test_several_records_in_one_message() -> None:
    parsed = parse_body(s3_event("uploads/a.jpg", "uploads/b.jpg"))
    assert [o.key for o in parsed.objects] == ["uploads/a.jpg", "uploads/b.jpg"]


def test_sns_envelope_is_unwrapped() -> None:
    body = json.dumps({"Type": "Notification", "Message": s3_event("uploads/x y.png")})
    parsed = parse_body(body)
    assert parsed.envelope == "sns"
    assert parsed.objects[0].key == "uploads/x y.png"


def test_eventbridge_keys_are_taken_as_they_are() -> None:
    body = json.dumps(
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {
                "bucket": {"name": "photos"},
                "object": {"key": "uploads/a+b 10:47.jpg", "etag": "e", "version-id": "v"},
            },
        }
    )
    (obj,) = parse_body(body).objects
    assert (obj.key, obj.etag, obj.version_id) == ("uploads/a+b 10:47.jpg", "e", "v")


def test_test_event_parses_to_nothing() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "photos"})
    parsed = parse_body(body)
    assert parsed.test_event
    assert parsed.objects == ()


def test_removed_objects_are_kept_apart() -> None:
    parsed = parse_body(s3_event("references/a.jpg", name="ObjectRemoved:Delete"))
    assert parsed.objects == ()
    assert [o.key for o in parsed.removed] == ["references/a.jpg"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "{}",
        '{"Records": []}',
        '{"Records": [{"s3": {}}]}',
        '{"Records": ["x"]}',
        '{"Type": "Notification", "Message": "nope"}',
        '{"source": "aws.s3", "detail": {}}',
    ],
)
def test_malformed_bodies_raise_a_clear_error(body: str) -> None:
    with pytest.raises(BadMessageError):
        parse_body(body)


def test_overlong_key_is_refused() -> None:
    with pytest.raises(BadMessageError, match="1024"):
        parse_body(s3_event("uploads/" + "x" * 1100))
