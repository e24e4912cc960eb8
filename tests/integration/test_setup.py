"""`worker setup` against a moto server and LocalStack over HTTP: twice, then an upload through the
wiring."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from worker.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.emulators("moto", "localstack")]


@pytest.fixture
def endpoint(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (and so `worker setup`) at the session's emulator."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("LOG_FORMAT", "console")
    return aws_endpoint


@pytest.fixture
def bucket() -> str:
    return f"setup-{uuid.uuid4().hex[:12]}"


def _client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=region)


def account(endpoint: str) -> str:
    """The emulator's account id (moto: 123456789012, LocalStack: 000000000000)."""
    found: str = _client("sts", endpoint).get_caller_identity()["Account"]
    return found


def _setup(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    code = main(["setup", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return _exports(out)


def _exports(out: str) -> dict[str, str]:
    exports = {}
    for line in out.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", f"not an export line: {line!r}"
        assert len(words) == 2, line
        name, value = words[1].split("=", 1)
        exports[name] = value
    return exports


def _snapshot(endpoint: str, exports: dict[str, str]) -> dict[str, Any]:
    """Everything setup manages, as AWS describes it."""
    s3, sqs, sns = (_client(n, endpoint) for n in ("s3", "sqs", "sns"))
    bucket = exports["BUCKET_NAME"]
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    notification.pop("ResponseMetadata", None)

    def attributes(url: str) -> dict[str, str]:
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {k: v for k, v in found.items() if not k.startswith("Approximate")}

    topic = exports["SNS_TOPIC_ARN"]
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "notification": notification,
        "queue": attributes(exports["QUEUE_URL"]),
        "dlq": attributes(exports["DLQ_URL"]),
        "queues": sorted(sqs.list_queues().get("QueueUrls", [])),
        "topics": sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]),
        "subscriptions": sorted(
            (s["Protocol"], s["Endpoint"])
            for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        ),
    }


def _drain(sqs: Any, queue_url: str, *, want: int = 0, wait: int = 1) -> list[dict[str, Any]]:
    """Receive and delete until ``want`` S3 records arrived (or a poll came back empty)."""
    records: list[dict[str, Any]] = []
    for _ in range(10):
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        )
        messages = response.get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            records.extend(body.get("Records", []))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages and len(records) >= want:
            break
    return records


def test_setup_twice_creates_then_changes_nothing(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _setup(capsys, "--bucket", bucket, "--email", "ops@example.com")
    assert list(first) == ["BUCKET_NAME", "QUEUE_URL", "SNS_TOPIC_ARN", "DLQ_URL"]
    assert first["BUCKET_NAME"] == bucket
    before = _snapshot(endpoint, first)
    sqs = _client("sqs", endpoint)
    _drain(sqs, first["QUEUE_URL"])  # the s3:TestEvent S3 sends when the notification is set

    second = _setup(capsys, "--bucket", bucket, "--email", "ops@example.com")

    assert second == first
    assert _snapshot(endpoint, second) == before
    # Nothing was re-put: no new s3:TestEvent.
    assert (
        sqs.receive_message(QueueUrl=first["QUEUE_URL"], WaitTimeSeconds=0).get("Messages", [])
        == []
    )

    queue = before["queue"]
    assert json.loads(queue["RedrivePolicy"])["deadLetterTargetArn"] == before["dlq"]["QueueArn"]
    assert int(json.loads(queue["RedrivePolicy"])["maxReceiveCount"]) == 5
    assert int(queue["VisibilityTimeout"]) >= 6 * 30
    assert int(before["dlq"]["MessageRetentionPeriod"]) == 14 * 24 * 3600
    (statement,) = json.loads(queue["Policy"])["Statement"]
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
        "StringEquals": {"aws:SourceAccount": account(endpoint)},
    }
    assert before["subscriptions"] == [("email", "ops@example.com")]


def test_uploads_reach_the_queue_and_results_do_not(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exports = _setup(capsys, "--bucket", bucket)
    s3, sqs = _client("s3", endpoint), _client("sqs", endpoint)
    _drain(sqs, exports["QUEUE_URL"])

    s3.put_object(Bucket=bucket, Key="results/uploads/a.jpg.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="elsewhere/b.jpg", Body=b"x")
    s3.put_object(Bucket=bucket, Key="uploads/party 1.jpg", Body=b"jpeg")
    s3.put_object(Bucket=bucket, Key="references/alice.jpg", Body=b"jpeg")
    s3.delete_object(Bucket=bucket, Key="references/alice.jpg")

    records = _drain(sqs, exports["QUEUE_URL"], want=3)
    seen = sorted(
        (unquote_plus(r["s3"]["object"]["key"]), r["eventName"].split(":")[0]) for r in records
    )
    assert seen == [
        ("references/alice.jpg", "ObjectCreated"),
        ("references/alice.jpg", "ObjectRemoved"),
        ("uploads/party 1.jpg", "ObjectCreated"),
    ]


def test_setup_keeps_the_buckets_other_notifications(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, sqs = _client("s3", endpoint), _client("sqs", endpoint)
    s3.create_bucket(Bucket=bucket)
    other_url = sqs.create_queue(QueueName=f"{bucket}-other")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "other-app",
                    "QueueArn": other_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "other/"}]}},
                }
            ]
        },
    )

    _setup(capsys, "--bucket", bucket)

    entries = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert sorted(e["Id"] for e in entries) == [
        "face-match-references",
        "face-match-uploads",
        "other-app",
    ]


def test_setup_outside_us_east_1_uses_a_location_constraint(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    exports = _setup(capsys, "--bucket", bucket, "--queue-name", f"{bucket}-q")
    assert exports["SNS_TOPIC_ARN"].split(":")[3] == "eu-west-1"
    location = _client("s3", endpoint, "eu-west-1").get_bucket_location(Bucket=bucket)
    assert location["LocationConstraint"] == "eu-west-1"
    assert exports["QUEUE_URL"].endswith(f"/{bucket}-q")
    assert exports["DLQ_URL"].endswith(f"/{bucket}-q-dlq")


def test_setup_refuses_overlapping_prefixes_with_exit_2(
    endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESULT_PREFIX", "uploads/results/")
    assert main(["setup", "--bucket", bucket]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "UPLOAD_PREFIX and RESULT_PREFIX overlap" in captured.err


def test_output_is_evalable_by_a_shell(endpoint: str, bucket: str, tmp_path: Path) -> None:
    worker = Path(sys.executable).with_name("worker")
    script = (
        f'eval "$({shlex.quote(str(worker))} setup --bucket {bucket} 2>/dev/null)" && '
        'printf "%s\\n" "$BUCKET_NAME" "$QUEUE_URL" "$SNS_TOPIC_ARN" "$DLQ_URL"'
    )
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    name, queue_url, topic_arn, dlq_url = result.stdout.splitlines()
    assert name == bucket
    # moto answers with its own endpoint, LocalStack (like AWS) with a per-region SQS host.
    port = endpoint.rsplit(":", 1)[1]
    assert queue_url.endswith(f":{port}/{account(endpoint)}/{bucket}-uploads")
    assert topic_arn.startswith("arn:aws:sns:us-east-1:")
    assert dlq_url.endswith(f":{port}/{account(endpoint)}/{bucket}-uploads-dlq")
