"""`worker dlq` and `send_to_dlq` against a moto server and LocalStack over HTTP, through
`worker.cli.main`."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from worker.aws import sqs as sqs_edge
from worker.cli import main
from worker.ops import dlq

pytestmark = [pytest.mark.slow, pytest.mark.emulators("moto", "localstack")]


@pytest.fixture
def sqs(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    return boto3.client("sqs")


@pytest.fixture
def queues(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A fresh source queue whose redrive policy names a fresh DLQ; QUEUE_URL set, DLQ_URL not."""
    name = f"q-{uuid.uuid4().hex[:12]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source_url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    monkeypatch.setenv("QUEUE_URL", source_url)
    monkeypatch.delenv("DLQ_URL", raising=False)
    return source_url, dlq_url


def s3_event(*keys: str, bucket: str = "photos") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(k)}},
                }
                for k in keys
            ]
        }
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dlq", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def visible(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0", "something stayed hidden"
    return int(attrs["ApproximateNumberOfMessages"])


def dead_letter_through_policy(sqs: Any, source_url: str, body: str) -> None:
    """Let the redrive policy (maxReceiveCount 1) move ``body`` to the DLQ, as a crash loop would."""
    sqs.send_message(QueueUrl=source_url, MessageBody=body)
    for _ in range(3):
        sqs.receive_message(QueueUrl=source_url, VisibilityTimeout=0, WaitTimeSeconds=0)


# ------------------------------------------------------------------------------------------ list


def test_list_on_an_empty_queue_prints_nothing(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list")
    assert (code, out) == (0, "")
    assert "no messages" in err
    code, out, _ = run(capsys, "list", "--json")
    assert (code, out) == (0, "")


def test_list_shows_every_message_and_consumes_none(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source_url, dlq_url = queues
    dlq.send_to_dlq(sqs, dlq_url, "not json at all", "BadMessage", "body is not JSON: …")
    dlq.send_to_dlq(sqs, dlq_url, s3_event("uploads/party 1.jpg", "uploads/zoë+%.png"), "X", "y")
    dead_letter_through_policy(sqs, source_url, s3_event("uploads/crash.jpg"))
    for index in range(12):  # more than one receive batch
        dlq.send_to_dlq(sqs, dlq_url, f'{{"n": {index}}}', "BadMessage", f"number {index}")

    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 15
    assert len({row["message_id"] for row in rows}) == 15
    assert visible(sqs, dlq_url) == 15

    by_type = {row["error_type"]: row for row in rows}
    assert by_type["X"]["objects"] == [
        {"bucket": "photos", "key": "uploads/party 1.jpg", "version_id": None, "etag": None},
        {"bucket": "photos", "key": "uploads/zoë+%.png", "version_id": None, "etag": None},
    ]
    assert by_type["BadMessage"]["objects"] == []
    assert by_type["BadMessage"]["parse_error"]
    # Through the redrive policy: no error attributes, objects still shown.
    policy = by_type[""]
    assert policy["error_message"] == ""
    assert [o["key"] for o in policy["objects"]] == ["uploads/crash.jpg"]
    assert policy["receive_count"] >= 1
    for row in rows:
        assert row["sent_at"].endswith("Z")
        assert len(row["sent_at"]) == len("2026-11-26T22:00:00Z")

    # A second look sees the same messages: nothing was consumed or left hidden.
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 15
    assert all(len(line.split("\t")) == 6 for line in lines)
    assert any(
        "s3://photos/uploads/party 1.jpg, s3://photos/uploads/zoë+%.png" in ln for ln in lines
    )
    assert visible(sqs, dlq_url) == 15


def test_list_limit_shows_n_and_hides_nothing(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dlq_url = queues
    for index in range(4):
        dlq.send_to_dlq(sqs, dlq_url, s3_event(f"uploads/{index}.jpg"), "BadMessage", "odd")
    code, out, _ = run(capsys, "list", "--limit", "2")
    assert code == 0
    assert len(out.splitlines()) == 2
    assert visible(sqs, dlq_url) == 4


def test_list_escapes_control_characters_in_its_lines(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dlq_url = queues
    dlq.send_to_dlq(sqs, dlq_url, s3_event("uploads/a\tb\nc.jpg"), "Bad\tType", "line1\nline2")
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.count("\n") == 1
    fields = out.rstrip("\n").split("\t")
    assert fields[3:] == ["Bad\\tType", "line1\\nline2", "s3://photos/uploads/a\\tb\\nc.jpg"]


def test_dlq_url_setting_wins_over_the_redrive_policy(
    sqs: Any,
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = sqs.create_queue(QueueName=f"other-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dlq.send_to_dlq(sqs, other, "x", "BadMessage", "from the other queue")
    monkeypatch.setenv("DLQ_URL", other)
    monkeypatch.delenv("QUEUE_URL")
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    assert json.loads(out)["error_message"] == "from the other queue"


def test_no_queue_settings_is_a_configuration_error(
    sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QUEUE_URL", raising=False)
    monkeypatch.delenv("DLQ_URL", raising=False)
    code, out, err = run(capsys, "list")
    assert (code, out) == (2, "")
    assert "DLQ_URL" in err
    assert "Traceback" not in err


def test_queue_without_redrive_policy_is_a_configuration_error(
    sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = sqs.create_queue(QueueName=f"plain-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    monkeypatch.setenv("QUEUE_URL", plain)
    code, _, err = run(capsys, "list")
    assert code == 2
    assert "no redrive policy" in err


def test_missing_queue_is_a_configuration_error(
    sqs: Any,
    aws_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = boto3.client("sts").get_caller_identity()["Account"]  # moto's, or LocalStack's
    monkeypatch.setenv("QUEUE_URL", f"{aws_endpoint}/{account}/does-not-exist")
    code, _, err = run(capsys, "list")
    assert code == 2
    assert "does not exist" in err
    assert "Traceback" not in err


def test_bucket_name_is_not_required(
    queues: tuple[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    monkeypatch.delenv("SNS_TOPIC_ARN", raising=False)
    assert run(capsys, "list")[0] == 0


# --------------------------------------------------------------------------------------- redrive


def test_redrive_moves_everything_back_without_the_error_attributes(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source_url, dlq_url = queues
    bodies = {s3_event(f"uploads/{i}.jpg") for i in range(23)}
    for body in bodies:
        dlq.send_to_dlq(sqs, dlq_url, body, "BadMessage", "reason")
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody="kept attributes",
        MessageAttributes={
            "trace": {"DataType": "String", "StringValue": "abc"},
            "error_type": {"DataType": "String", "StringValue": "Old"},
        },
    )

    code, out, err = run(capsys, "redrive")
    assert code == 0, err
    assert out == f"moved 24 messages to {source_url}\n"
    assert visible(sqs, dlq_url) == 0

    received: dict[str, dict[str, Any]] = {}
    while True:
        batch = sqs.receive_message(
            QueueUrl=source_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            received[message["Body"]] = message.get("MessageAttributes", {})
    assert set(received) == {*bodies, "kept attributes"}
    assert received["kept attributes"] == {"trace": {"DataType": "String", "StringValue": "abc"}}
    assert all(attrs == {} for body, attrs in received.items() if body in bodies)


def test_redrive_limit_and_source_queue_found_from_the_dlq(
    sqs: Any,
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source_url, dlq_url = queues
    for i in range(7):
        dlq.send_to_dlq(sqs, dlq_url, f"body {i}", "BadMessage", "reason")
    monkeypatch.delenv("QUEUE_URL")
    monkeypatch.setenv("DLQ_URL", dlq_url)
    code, out, _ = run(capsys, "redrive", "--limit", "3")
    assert code == 0
    assert out == f"moved 3 messages to {source_url}\n"
    assert visible(sqs, dlq_url) == 4
    assert visible(sqs, source_url) == 3


def test_redrive_of_an_empty_queue(
    queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source_url, _ = queues
    assert run(capsys, "redrive") == (0, f"moved 0 messages to {source_url}\n", "")


def test_redrive_policy_round_trip(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source_url, dlq_url = queues
    body = s3_event("uploads/retry me.jpg")
    dead_letter_through_policy(sqs, source_url, body)
    assert visible(sqs, dlq_url) == 1
    assert run(capsys, "redrive")[:2] == (0, f"moved 1 message to {source_url}\n")
    message = sqs.receive_message(QueueUrl=source_url)["Messages"][0]
    assert message["Body"] == body


# ----------------------------------------------------------------------------------------- purge


def test_purge_refuses_without_yes(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dlq_url = queues
    dlq.send_to_dlq(sqs, dlq_url, "x", "BadMessage", "reason")
    code, out, err = run(capsys, "purge")
    assert (code, out) == (2, "")
    assert "--yes" in err
    assert visible(sqs, dlq_url) == 1


def test_purge_with_yes_empties_the_queue(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dlq_url = queues
    for i in range(3):
        dlq.send_to_dlq(sqs, dlq_url, f"x{i}", "BadMessage", "reason")
    code, out, _ = run(capsys, "purge", "--yes")
    assert code == 0
    assert out == f"purged {dlq_url} (about 3 messages)\n"
    assert visible(sqs, dlq_url) == 0


def test_dlq_without_an_action_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert "list, redrive or purge" in err


# ----------------------------------------------------------------------------------- send_to_dlq


def test_send_to_dlq_keeps_a_near_limit_body_within_sqs_limits(
    sqs: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dlq_url = queues
    body = "é" * (sqs_edge.MAX_MESSAGE_BYTES // 2 - 10)  # ~256 KiB of UTF-8
    dlq.send_to_dlq(sqs, dlq_url, body, "BadMessage", "m" * 5000)
    dlq.send_to_dlq(sqs, dlq_url, "\x00bad\ud800chars", "Bad\x01Type", "")
    letters = {letter.error_type: letter for letter in dlq.peek(sqs, dlq_url)}
    assert set(letters) == {"BadMessage", "Bad\ufffdType"}
    assert "body cut" in letters["BadMessage"].error_message
    assert letters["Bad\ufffdType"].error_message == ""
