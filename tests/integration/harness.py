"""Integration harness: a moto server over HTTP, the fake Rekognition, the contract's resources
(bucket → notification → queue with DLQ, topic → subscribed results queue) and `worker run` in a
subprocess, driven the way a user would: uploads with boto3, results read from the subscribed
queue and from ``results/``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.record_schema import validate_record
from worker.cli import main
from worker.ops.provision import provision
from worker.ops.wiring import plan

REGION = "us-east-1"


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def worker_record(doc: Any) -> dict[str, Any]:
    """``doc``, checked against docs/result-record.schema.json; as `worker run` writes and
    publishes it, it carries a ``notification_id`` (docs/contract.md)."""
    validate_record(doc)
    assert "notification_id" in doc, f"a record of `worker run` without notification_id: {doc}"
    return dict(doc)


@dataclass
class Published:
    """One SNS notification as the subscribed queue received it."""

    subject: str
    record: dict[str, Any]
    # moto copies the publish's attributes into the envelope; AWS does not for the worker's JSON
    # message structure (docs/sns-subscribers.md): on AWS this is {}.
    attributes: dict[str, Any]


@dataclass
class Stack:
    endpoint: str
    bucket: str
    queue_url: str
    dlq_url: str
    topic_arn: str
    results_queue_url: str
    s3: Any = field(repr=False)
    sqs: Any = field(repr=False)
    sns: Any = field(repr=False)

    @classmethod
    def create(cls, endpoint: str, max_receive_count: int = 5) -> Stack:
        """The contract's resources as `worker setup` makes them (``provision(plan(...))``: queue,
        DLQ and redrive policy, queue policy, both notifications, topic), plus a results queue
        subscribed to the topic, which is how these tests read what an e-mail reader would get."""
        s3, sqs, sns = (client(name, endpoint) for name in ("s3", "sqs", "sns"))
        name = f"t{uuid.uuid4().hex[:12]}"
        made = provision(
            plan(
                name,
                queue_name=name,
                topic_name=name,
                max_receive_count=max_receive_count,
                visibility_timeout_seconds=30,
            ),
            s3=s3,
            sqs=sqs,
            sns=sns,
            sts=client("sts", endpoint),
            region=REGION,
        )
        results_url = sqs.create_queue(QueueName=f"{name}-results")["QueueUrl"]
        results_arn = sqs.get_queue_attributes(QueueUrl=results_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=made.topic_arn, Protocol="sqs", Endpoint=results_arn)
        return cls(
            endpoint, name, made.queue_url, made.dlq_url, made.topic_arn, results_url, s3, sqs, sns
        )

    def env(self, rekognition_endpoint: str, **settings: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_ENDPOINT_URL", "PYTEST_", "COV_"))
        }
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ENDPOINT_URL_REKOGNITION=rekognition_endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            BUCKET_NAME=self.bucket,
            QUEUE_URL=self.queue_url,
            SNS_TOPIC_ARN=self.topic_arn,
            # Both deployments name the DLQ: the Terraform module's task definition and the
            # exports of `worker setup`. (Without it the worker reads the queue's redrive policy.)
            DLQ_URL=self.dlq_url,
            POLL_WAIT_SECONDS="1",
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
        )
        env.update(settings)
        return env

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def published(self, count: int, timeout: float = 30.0) -> list[Published]:
        """Wait for ``count`` notifications on the subscribed queue (and fail if more come)."""
        found: list[Published] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            for message in self._receive(self.results_queue_url):
                envelope = json.loads(message["Body"])
                found.append(
                    Published(
                        subject=envelope.get("Subject", ""),
                        record=worker_record(json.loads(envelope["Message"])),
                        attributes=envelope.get("MessageAttributes", {}),
                    )
                )
        assert len(found) >= count, f"expected {count} notifications, got {len(found)}: {found}"
        return found

    def no_more_published(self, wait: float = 3.0) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            extra = self._receive(self.results_queue_url, wait=1)
            assert not extra, f"unexpected extra notification: {extra[0]['Body'][:500]}"

    def record(self, key: str) -> dict[str, Any]:
        obj = self.s3.get_object(Bucket=self.bucket, Key=f"results/{key}.json")
        return worker_record(json.loads(obj["Body"].read()))

    def queue_depth(self, url: str | None = None) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def wait_drained(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.queue_depth() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert self.queue_depth() == 0, "the queue was not drained"

    def _receive(self, url: str, wait: int = 1) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return messages


def cli(
    *argv: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m worker ARGV…` to its end, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "worker", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class WorkerProcess:
    """`python -m worker run` in a subprocess; stderr (JSON logs) kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                lines.append({"event": "(not json)", "text": line})
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if line.get("event") == name]

    def wait_for_log(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            assert self.proc.poll() is None, f"worker exited early:\n{self.log_path.read_text()}"
            time.sleep(0.1)
        raise AssertionError(
            f"no {name!r} log line within {timeout} s:\n{self.log_path.read_text()}"
        )

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def dlq_cli(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str]:
    """``worker dlq ARGV`` in this process against ``stack``: (exit code, stdout)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    monkeypatch.setenv("QUEUE_URL", stack.queue_url)
    capsys.readouterr()
    code = main(["dlq", *argv])
    return code, capsys.readouterr().out
