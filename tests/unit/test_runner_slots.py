"""The runner's concurrency slots: one is given back when its upload's handler returns, so the
next message is received while the batched delete of the last one is still on its way. On mock_aws
SQS, no timing asserted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from worker.outcomes import Ack, Outcome
from worker.runner import Runner, RunnerConfig


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_the_next_message_is_handled_while_the_last_delete_is_still_pending(sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    second_started = threading.Event()
    handled: list[str] = []

    def handler(body: str) -> Outcome:
        handled.append(body)
        if len(handled) == 2:
            second_started.set()
        return Ack()

    delete = sqs.delete_message_batch
    overlapped: list[bool] = []

    def slow_delete(**kwargs: Any) -> Any:
        # Held until the second message is being handled (or 10 s: the old runner, which gave
        # the slot back only after this delete, never got there while it was held).
        if not overlapped:
            overlapped.append(second_started.wait(timeout=10))
        return delete(**kwargs)

    sqs.delete_message_batch = slow_delete
    config = RunnerConfig(queue_url=queue_url, dlq_url=None, concurrency=1, poll_wait_seconds=1)
    runner = Runner(sqs, handler, config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    sqs.send_message(QueueUrl=queue_url, MessageBody="first")
    deadline = time.monotonic() + 5
    while not handled and time.monotonic() < deadline:
        time.sleep(0.02)
    sqs.send_message(QueueUrl=queue_url, MessageBody="second")
    second_started.wait(timeout=15)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _visible_or_in_flight(sqs, queue_url):
        time.sleep(0.05)
    runner.stop()
    thread.join(timeout=15)

    assert handled == ["first", "second"]
    assert overlapped == [True], "the second message waited for the first one's delete"
    assert not _visible_or_in_flight(sqs, queue_url), "both messages are deleted"


def _visible_or_in_flight(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attrs[name]) for name in names)
