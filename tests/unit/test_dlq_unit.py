"""worker.ops.dlq without AWS: payload limits, descriptions, and redrive's partial failures (a fake SQS)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.aws import sqs as sqs_edge
from worker.cli.dlq import format_line
from worker.errors import ConfigError
from worker.ops import dlq


def _size(body: str, attributes: dict[str, Any]) -> int:
    total = len(body.encode())
    for name, value in attributes.items():
        total += len(name.encode()) + len(value["DataType"].encode())
        total += len(value["StringValue"].encode())
    return total


@given(body=st.text(max_size=2000), kind=st.text(max_size=400), reason=st.text(max_size=3000))
def test_payload_is_always_valid_for_sqs(body: str, kind: str, reason: str) -> None:
    out_body, attributes = sqs_edge.dead_letter_payload(body, kind, reason)
    assert out_body
    assert _size(out_body, attributes) <= sqs_edge.MAX_MESSAGE_BYTES
    assert attributes["error_type"]["StringValue"]
    assert len(attributes["error_type"]["StringValue"]) <= sqs_edge.MAX_ERROR_TYPE_CHARS
    for text in (out_body, *(v["StringValue"] for v in attributes.values())):
        text.encode("utf-8")  # no lone surrogates
        assert not sqs_edge._INVALID_SQS_CHARS.search(text)
    if "error_message" in attributes:
        assert len(attributes["error_message"]["StringValue"]) <= sqs_edge.MAX_ERROR_MESSAGE_CHARS


@pytest.mark.parametrize("body_bytes", [0, 1000, 255 * 1024, 256 * 1024, 256 * 1024 + 5])
def test_payload_near_the_size_limit(body_bytes: int) -> None:
    body = "x" * body_bytes
    out_body, attributes = sqs_edge.dead_letter_payload(body, "BadMessage", "r" * 5000)
    assert _size(out_body, attributes) <= sqs_edge.MAX_MESSAGE_BYTES
    if body_bytes <= 200 * 1024:
        assert out_body == (body or "(empty body)")
        assert len(attributes["error_message"]["StringValue"]) == sqs_edge.MAX_ERROR_MESSAGE_CHARS


def test_payload_keeps_a_short_reason_as_it_is() -> None:
    body, attributes = sqs_edge.dead_letter_payload('{"a": 1}', "BadMessage", "body is not JSON")
    assert body == '{"a": 1}'
    assert attributes == {
        "error_type": {"DataType": "String", "StringValue": "BadMessage"},
        "error_message": {"DataType": "String", "StringValue": "body is not JSON"},
    }


def test_iso_timestamp() -> None:
    assert dlq.iso_timestamp("1795730400000") == "2026-11-26T22:00:00Z"
    assert dlq.iso_timestamp(None) is None
    assert dlq.iso_timestamp("soon") is None
    assert dlq.iso_timestamp("9" * 30) is None


@pytest.mark.parametrize(
    "body", ["", "null", "[]", '{"Records": 5}', "\ud800", '{"Type": "Notification", "Message": 1}']
)
def test_describe_never_fails_on_a_strange_body(body: str) -> None:
    letter = dlq.describe({"MessageId": "m", "Body": body, "Attributes": {}})
    assert letter.objects == ()
    assert letter.parse_error
    assert letter.error_type == letter.error_message == ""
    assert letter.sent_at is None
    assert letter.receive_count is None
    json.dumps(letter.as_json())
    assert format_line(letter).startswith("m\t")


def test_resolve_needs_one_of_the_two_settings() -> None:
    with pytest.raises(ConfigError, match="DLQ_URL"):
        dlq.resolve_dlq_url(FakeSQS(), dlq_url=None, queue_url=None)
    assert (
        dlq.resolve_dlq_url(FakeSQS(), dlq_url="https://q/dlq", queue_url=None) == "https://q/dlq"
    )


def test_unreadable_redrive_policy_is_a_configuration_error() -> None:
    sqs = FakeSQS(policy="{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        dlq.resolve_dlq_url(sqs, dlq_url=None, queue_url="https://q/src")


def test_redrive_into_the_dlq_itself_is_refused() -> None:
    with pytest.raises(ConfigError):
        dlq.redrive(FakeSQS(), "https://q/dlq", "https://q/dlq")


class FakeSQS:
    """Just enough of an SQS client for redrive: a list of messages, scripted per-entry failures."""

    def __init__(
        self,
        messages: int = 0,
        *,
        fail_send: set[str] | None = None,
        fail_delete: set[str] | None = None,
        policy: str | None = None,
    ) -> None:
        self.messages = [
            {
                "MessageId": f"m{i}",
                "Body": f"body {i}",
                "MessageAttributes": {
                    "error_type": {"DataType": "String", "StringValue": "BadMessage"},
                    "n": {"DataType": "Number", "StringValue": str(i), "StringListValues": []},
                },
            }
            for i in range(messages)
        ]
        self.hidden: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.released: list[str] = []
        self.fail_send = fail_send or set()
        self.fail_delete = fail_delete or set()
        self.policy = policy

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        visible = [m for m in self.messages if m["MessageId"] not in self.hidden]
        attrs = {"ApproximateNumberOfMessages": str(len(visible))}
        if self.policy is not None:
            attrs["RedrivePolicy"] = self.policy
        return {"Attributes": attrs}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        out = [m for m in self.messages if m["MessageId"] not in self.hidden][:MaxNumberOfMessages]
        self.hidden.update(m["MessageId"] for m in out)
        return {"Messages": [{**m, "ReceiptHandle": "rh-" + m["MessageId"]} for m in out]}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ok, failed = [], []
        for entry in Entries:
            if entry["MessageBody"] in self.fail_send:
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": False})
            else:
                self.sent.append(entry)
                ok.append({"Id": entry["Id"], "MessageId": "new"})
        return {"Successful": ok, "Failed": failed}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ok, failed = [], []
        for entry in Entries:
            mid = entry["ReceiptHandle"].removeprefix("rh-")
            if mid in self.fail_delete:
                failed.append({"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid"})
            else:
                self.messages = [m for m in self.messages if m["MessageId"] != mid]
                ok.append({"Id": entry["Id"]})
        return {"Successful": ok, "Failed": failed}

    def change_message_visibility_batch(
        self, QueueUrl: str, Entries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        assert len(Entries) <= 10
        for entry in Entries:
            mid = entry["ReceiptHandle"].removeprefix("rh-")
            self.hidden.discard(mid)
            self.released.append(mid)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_redrive_handles_per_entry_failures() -> None:
    sqs = FakeSQS(25, fail_send={"body 3", "body 17"}, fail_delete={"m5"})
    result = dlq.redrive(sqs, "https://q/dlq", "https://q/src", wait_seconds=0)  # type: ignore[arg-type]
    assert result.moved == 22
    assert result.failed == 2
    assert result.duplicated == 1
    assert len(result.errors) == 3
    # Unsent messages stay on the DLQ and are visible again; only sent ones were deleted.
    assert sorted(m["MessageId"] for m in sqs.messages) == ["m17", "m3", "m5"]
    assert set(sqs.released) == {"m3", "m17"}
    assert len(sqs.sent) == 23
    # Error attributes are dropped, the rest kept without empty list fields.
    assert sqs.sent[0]["MessageAttributes"] == {"n": {"DataType": "Number", "StringValue": "0"}}


def test_redrive_limit() -> None:
    sqs = FakeSQS(25)
    result = dlq.redrive(sqs, "https://q/dlq", "https://q/src", limit=12, wait_seconds=0)  # type: ignore[arg-type]
    assert result.moved == 12
    assert len(sqs.messages) == 13


def test_peek_releases_everything_it_received() -> None:
    sqs = FakeSQS(23)
    letters = dlq.peek(sqs, "https://q/dlq", wait_seconds=0)  # type: ignore[arg-type]
    assert len(letters) == 23
    assert sqs.hidden == set()
    assert sorted(sqs.released) == sorted(f"m{i}" for i in range(23))
    assert dlq.peek(sqs, "https://q/dlq", limit=5, wait_seconds=0) == letters[:5]  # type: ignore[arg-type]
    assert sqs.hidden == set()
