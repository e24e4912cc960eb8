"""Messages as `worker run` meets them (issue 10): a bad record beside good ones, bodies that
crashed the parser, message attributes through the DLQ and back, and SIGTERM with work in flight.

The session's fake Rekognition has a gate that holds calls (tests/support/service.py), so that an
upload can be kept in flight for as long as a test needs.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.integration.harness import Stack, WorkerProcess, dlq_cli
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, face_png
from worker.aws.retry import MAX_ATTEMPTS

pytestmark = pytest.mark.slow

StartWorker = Callable[..., WorkerProcess]
CUSTOM = {
    "trace_id": {"DataType": "String", "StringValue": "trace-42"},
    "tenant": {"DataType": "Number", "StringValue": "7"},
}


def s3_record(bucket: str, key: str) -> dict[str, Any]:
    return {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
    }


def drain(stack: Stack) -> None:
    """Drop the S3 notifications already queued, so that only the test's own messages remain."""
    deadline = time.monotonic() + 10
    while stack.queue_depth() and time.monotonic() < deadline:
        for message in stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            stack.sqs.delete_message(
                QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    assert stack.queue_depth() == 0


def take_all(stack: Stack, url: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Receive and delete ``count`` messages from ``url`` (attributes included)."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        for message in stack.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", []):
            found[message["MessageId"]] = message
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(found) == count, f"expected {count} messages on {url}, got {list(found.values())}"
    return list(found.values())


def in_flight(fake: FakeRekognition, worker: WorkerProcess, timeout: float = 20.0) -> None:
    """Wait until the worker's upload is held inside a Rekognition call."""
    deadline = time.monotonic() + timeout
    while not fake.held and time.monotonic() < deadline:
        assert worker.proc.poll() is None, worker.log_path.read_text()
        time.sleep(0.05)
    assert fake.held, "no upload reached Rekognition"


# ------------------------------------------------------------------ one bad record among good ones


def test_a_bad_record_goes_to_the_dlq_alone_and_the_good_uploads_get_one_result_each(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    keys = ["uploads/first one.png", "uploads/second.png"]
    for key in keys:
        stack.put(key, face_png(ALICE))
    drain(stack)
    bad = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket}}}
    body = json.dumps(
        {"Records": [s3_record(stack.bucket, keys[0]), bad, s3_record(stack.bucket, keys[1])]}
    )
    # The first upload's first Rekognition call fails every attempt: it must be retried, so the
    # message is split (the bad record must not be dead-lettered again at the next receive).
    fake_rekognition.throttle(MAX_ATTEMPTS)
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body, MessageAttributes=CUSTOM)
    worker = start_worker()

    published = stack.published(2, timeout=90)
    stack.no_more_published(wait=2)
    assert sorted(p.record["key"] for p in published) == sorted(keys)
    assert all(p.record["status"] == "matched" for p in published)
    stack.wait_drained()
    assert worker.events("message_split"), "the upload to retry went back on its own"

    (dead,) = take_all(stack, stack.dlq_url, 1)
    assert json.loads(dead["Body"]) == {"Records": [bad]}
    attributes = dead["MessageAttributes"]
    assert attributes["error_type"]["StringValue"] == "BadMessage"
    reason = attributes["error_message"]["StringValue"]
    assert "Records[1] lacks s3.bucket.name or s3.object.key" in reason
    assert {k: v for k, v in attributes.items() if not k.startswith("error_")} == CUSTOM
    assert worker.terminate() == 0


# ------------------------------------------------------------------ bodies that crashed the parser


def test_unreadable_bodies_are_dead_lettered_at_once_with_a_reason_and_redriven_with_attributes(
    stack: Stack,
    start_worker: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bodies = {
        "1" * 5000: "cannot read",
        "[" * 100_000: "nested too deeply",
        json.dumps({"Type": "Notification", "Message": "[" * 100_000}): "nested too deeply",
    }
    worker = start_worker()
    for body in bodies:
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body, MessageAttributes=CUSTOM)
    # At the first receive: no crash, no backoff, no trip through the redrive policy.
    deadline = time.monotonic() + 15
    while stack.queue_depth(stack.dlq_url) < len(bodies) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.queue_depth(stack.dlq_url) == len(bodies)
    stack.wait_drained()
    assert not worker.events("handler_crashed")
    assert worker.terminate() == 0

    code, out = dlq_cli(stack, monkeypatch, capsys, "list", "--json")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert {row["error_type"] for row in listed} == {"BadMessage"}
    assert sorted(row["error_message"].split(":")[0] for row in listed) == sorted(
        ["body is JSON the worker cannot read", "body is JSON nested too deeply to read",
         "SNS envelope's Message is JSON nested too deeply to read"]
    )  # fmt: skip

    # Redrive brings each back as it came: body and attributes, without ours.
    code, out = dlq_cli(stack, monkeypatch, capsys, "redrive")
    assert code == 0
    assert out == f"moved {len(bodies)} messages to {stack.queue_url}\n"
    back = take_all(stack, stack.queue_url, len(bodies))
    assert sorted(m["Body"] for m in back) == sorted(bodies)
    assert all(m["MessageAttributes"] == CUSTOM for m in back)


# ------------------------------------------------------------------ signals


def test_in_flight_work_stays_hidden_through_the_grace_period_and_is_published_once(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    worker = start_worker(VISIBILITY_TIMEOUT_SECONDS="5", SHUTDOWN_GRACE_SECONDS="20")
    fake_rekognition.hold()
    stack.put("uploads/slow.png", face_png(ALICE))
    in_flight(fake_rekognition, worker)
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for_log("shutdown_requested")

    # Well past the 5 s visibility timeout: another replica must not get the message.
    seen: list[dict[str, Any]] = []
    until = time.monotonic() + 9
    while time.monotonic() < until:
        seen += stack.sqs.receive_message(
            QueueUrl=stack.queue_url, WaitTimeSeconds=1, VisibilityTimeout=0
        ).get("Messages", [])
    assert seen == [], "an in-flight message reappeared during the grace period"

    fake_rekognition.release()
    assert worker.proc.wait(timeout=20) == 0  # finished within the grace period
    assert worker.events("worker_stopped")[0]["released"] == 0
    (result,) = stack.published(1)
    assert result.record["key"] == "uploads/slow.png"
    stack.no_more_published(wait=2)
    assert stack.queue_depth() == 0


def test_a_second_signal_exits_at_once(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    worker = start_worker(SHUTDOWN_GRACE_SECONDS="60")
    fake_rekognition.hold()  # the upload's call never returns
    stack.put("uploads/stuck.png", face_png(ALICE))
    in_flight(fake_rekognition, worker)
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for_log("shutdown_requested")
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.terminate(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 3
    assert worker.events("second_signal_exiting_now"), "the log line is flushed before the exit"


def test_a_message_received_during_the_shutdown_goes_straight_back_to_the_queue(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    """The stop does not wait for the open long poll; when that poll returns while in-flight work
    still finishes, what it brought is handed back at once (visibility 0), not kept for the
    visibility timeout (60 s)."""
    worker = start_worker(CONCURRENCY="2", POLL_WAIT_SECONDS="20", SHUTDOWN_GRACE_SECONDS="30")
    fake_rekognition.hold()
    stack.put("uploads/slow.png", face_png(ALICE))
    in_flight(fake_rekognition, worker)
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for_log("shutdown_requested")
    stack.put("uploads/late.png", b"not an image")  # the open long poll (one slot free) takes it
    assert worker.wait_for_log("received_after_stop_released")["count"] == 1
    fake_rekognition.release()
    assert worker.proc.wait(timeout=30) == 0  # the in-flight upload finished in the grace period
    assert worker.events("worker_stopped")[0]["released"] == 0
    (slow,) = stack.published(1)
    assert slow.record["key"] == "uploads/slow.png"
    start_worker()  # well within the 60 s visibility timeout
    (late,) = stack.published(1, timeout=10)
    assert late.record["key"] == "uploads/late.png"
