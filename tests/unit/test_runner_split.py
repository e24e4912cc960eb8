"""The runner settling messages with bad records (split, dead-letter alone) and keeping message
attributes, on mock_aws SQS: what ends up on the queue and the dead-letter queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from worker.aws import sqs as sqs_edge
from worker.outcomes import Ack, DeadLetter, Outcome, Partial, Resend, RetryLater
from worker.runner import Runner, RunnerConfig

ORIGINAL = '{"Records": [{"good": 1}, {"bad": 1}]}'
GOOD = '{"Records": [{"good": 1}]}'
BAD = '{"Records": [{"bad": 1}]}'
ATTRIBUTES: dict[str, Any] = {
    "trace": {"DataType": "String", "StringValue": "abc-123"},
    "count": {"DataType": "Number", "StringValue": "7"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    "error_type": {"DataType": "String", "StringValue": "stale"},  # replaced by ours
}
KEPT = {k: v for k, v in ATTRIBUTES.items() if k != "error_type"}


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def make_queues(sqs: Any) -> tuple[str, str]:
    dlq_url = sqs.create_queue(QueueName="inbox-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName="inbox", Attributes={"VisibilityTimeout": "30"})[
        "QueueUrl"
    ]
    return queue_url, dlq_url


def depth(sqs: Any, url: str) -> dict[str, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    names.append("ApproximateNumberOfMessagesDelayed")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {
        name.removeprefix("ApproximateNumberOfMessages") or "visible": int(attrs[name])
        for name in names
    }


def run(sqs: Any, handler: Callable[[str], Outcome], until: Callable[[], bool]) -> None:
    """Run the runner in a thread, send the original message, stop once ``until()`` holds."""
    urls = sqs.list_queues()["QueueUrls"]
    queue_url = next(u for u in urls if u.endswith("/inbox"))
    dlq_url = next(u for u in urls if u.endswith("/inbox-dlq"))
    config = RunnerConfig(
        queue_url=queue_url, dlq_url=dlq_url, concurrency=2, poll_wait_seconds=1, grace_seconds=3
    )
    runner = Runner(sqs, handler, config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    sqs.send_message(QueueUrl=queue_url, MessageBody=ORIGINAL, MessageAttributes=ATTRIBUTES)
    deadline = time.monotonic() + 15
    while not until() and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert until(), "the runner never got there"


def receive_all(sqs: Any, url: str, wait: int = 0) -> list[dict[str, Any]]:
    answer = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    return list(answer.get("Messages", []))


def retry(delay: float) -> Partial:
    later = RetryLater(reason="throttled", delay=delay)
    return Partial(
        dead_letters=(DeadLetter("BadMessage", "Records[1] lacks s3.object.key", body=BAD),),
        rest=later,
        resends=(Resend(GOOD, later),),
    )


def test_a_message_to_retry_with_a_bad_record_is_split(sqs: Any) -> None:
    queue_url, dlq_url = make_queues(sqs)
    seen: list[str] = []

    def handler(body: str) -> Outcome:
        seen.append(body)
        return retry(delay=4)

    run(
        sqs,
        handler,
        until=lambda: (
            depth(sqs, dlq_url)["visible"] == 1
            and not any(v for k, v in depth(sqs, queue_url).items() if k != "Delayed")
        ),
    )
    assert seen == [ORIGINAL]

    # The bad record alone on the DLQ, with our reason and the message's own attributes.
    (dead,) = receive_all(sqs, dlq_url)
    assert dead["Body"] == BAD
    attributes = dead["MessageAttributes"]
    assert attributes["error_type"]["StringValue"] == "BadMessage"
    assert attributes["error_message"]["StringValue"] == "Records[1] lacks s3.object.key"
    assert {k: v for k, v in attributes.items() if not k.startswith("error_")} == KEPT

    # The original is gone; the record to retry is back on the queue alone, delayed by the backoff.
    assert depth(sqs, queue_url)["Delayed"] == 1
    assert receive_all(sqs, queue_url) == []
    (resent,) = receive_all(sqs, queue_url, wait=8)
    assert resent["Body"] == GOOD
    assert resent["MessageAttributes"] == KEPT
    assert resent["Attributes"]["ApproximateReceiveCount"] == "1"


def test_when_the_resend_fails_the_original_is_kept_and_nothing_is_dead_lettered(
    sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dlq_url = make_queues(sqs)

    def refuse(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "InternalError", "Message": "down"}}, "SendMessageBatch"
        )

    monkeypatch.setattr(sqs, "send_message_batch", refuse)
    seen: list[str] = []

    def handler(body: str) -> Outcome:
        seen.append(body)
        return retry(delay=1)

    run(sqs, handler, until=lambda: len(seen) >= 2)  # handed back after 1 s, received again
    assert seen[:2] == [ORIGINAL, ORIGINAL]
    assert depth(sqs, dlq_url)["visible"] == 0, "a bad record is dead-lettered once, with the rest"


def test_when_the_dead_letter_send_fails_the_original_is_kept(
    sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dlq_url = make_queues(sqs)
    real_send = sqs.send_message

    def refuse_dlq(**kwargs: Any) -> Any:
        if kwargs["QueueUrl"] == dlq_url:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "SendMessage")
        return real_send(**kwargs)

    monkeypatch.setattr(sqs, "send_message", refuse_dlq)
    seen: list[str] = []

    def handler(body: str) -> Outcome:
        seen.append(body)
        return retry(delay=1) if body == ORIGINAL else Ack()

    run(sqs, handler, until=lambda: seen.count(ORIGINAL) >= 2)
    assert depth(sqs, dlq_url)["visible"] == 0


def test_a_bad_record_beside_done_ones_is_dead_lettered_and_the_message_deleted(sqs: Any) -> None:
    queue_url, dlq_url = make_queues(sqs)
    partial = Partial(
        dead_letters=(DeadLetter("BadMessage", "Records[1] bad", body=BAD),), rest=Ack()
    )
    run(sqs, lambda _: partial, until=lambda: depth(sqs, dlq_url)["visible"] == 1)
    (dead,) = receive_all(sqs, dlq_url)
    assert dead["Body"] == BAD
    time.sleep(0.3)
    assert depth(sqs, queue_url) == {"visible": 0, "NotVisible": 0, "Delayed": 0}


def test_a_dead_lettered_message_keeps_its_attributes(sqs: Any) -> None:
    _, dlq_url = make_queues(sqs)
    dead = DeadLetter("BadMessage", "body is not JSON")
    run(sqs, lambda _: dead, until=lambda: depth(sqs, dlq_url)["visible"] == 1)
    (message,) = receive_all(sqs, dlq_url)
    assert message["Body"] == ORIGINAL
    attributes = message["MessageAttributes"]
    assert attributes["error_type"]["StringValue"] == "BadMessage"
    assert {k: v for k, v in attributes.items() if not k.startswith("error_")} == KEPT


def test_ten_attributes_keep_eight_and_the_reason_names_the_others() -> None:
    own = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    body, attributes = sqs_edge.dead_letter_payload("x", "BadMessage", "why", own)  # type: ignore[arg-type]
    assert body == "x"
    assert len(attributes) == sqs_edge.MAX_ATTRIBUTES
    assert sorted(attributes) == sorted(
        [*(f"a{i}" for i in range(8)), "error_type", "error_message"]
    )
    assert attributes["error_message"]["StringValue"] == "why (message attributes not kept: a8, a9)"


def test_a_message_still_failing_with_a_reason_at_its_last_receive_is_dead_lettered_with_it(
    sqs: Any,
) -> None:
    """An upload Rekognition may not read (KMS, permission) must reach an operator with its
    reason, not be moved silently by the redrive policy (issue 10, defect 2)."""
    queue_url, dlq_url = make_queues(sqs)
    reason = "InvalidS3ObjectException: Unable to get object metadata from S3."
    seen: list[str] = []

    def handler(body: str) -> Outcome:
        seen.append(body)
        return RetryLater(reason=reason, delay=0, error_type="UnreadableObject")

    urls = (queue_url, dlq_url)
    config = RunnerConfig(
        queue_url=urls[0],
        dlq_url=urls[1],
        concurrency=1,
        poll_wait_seconds=1,
        grace_seconds=3,
        max_receive_count=3,
    )
    runner = Runner(sqs, handler, config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    sqs.send_message(QueueUrl=queue_url, MessageBody=ORIGINAL, MessageAttributes=ATTRIBUTES)
    deadline = time.monotonic() + 15
    while depth(sqs, dlq_url)["visible"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    thread.join(timeout=15)

    assert len(seen) == 3  # retried until the last receive, then dead-lettered
    (dead,) = receive_all(sqs, dlq_url)
    assert dead["Body"] == ORIGINAL
    assert dead["MessageAttributes"]["error_type"]["StringValue"] == "UnreadableObject"
    assert dead["MessageAttributes"]["error_message"]["StringValue"] == reason
    assert dead["MessageAttributes"]["trace"] == ATTRIBUTES["trace"]
    assert receive_all(sqs, queue_url) == []
