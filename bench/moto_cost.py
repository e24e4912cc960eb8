"""What one call of each kind the worker makes costs the moto server, in CPU, as released and with
:mod:`worker.local.moto_speedups`, side by side in one run.

Each variant is a moto server in its own process (:mod:`bench.moto_server`) with the contract's
resources; the driver makes ``--calls`` calls of each kind one after another and prints the moto
process's CPU time per call (``/proc``) and the wall time per call seen by boto3. The uploads'
notifications stay in the queue, so ReceiveMessage is measured with ``--calls`` messages waiting
(96: the uploads of the 4-replica scaling run, made all at once). It asserts nothing::

    .venv/bin/python -m bench.moto_cost [--calls 96]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench.throughput import IMAGE_SIZE, cpu_s, start_moto
from tests.integration.harness import Stack
from tests.support.squares import face_png

Call = Callable[[int], Any]


def calls(stack: Stack, depth: int) -> dict[str, Call]:
    """The kinds of call an upload costs moto (the worker's and the driver's); ``depth``:
    the notifications ReceiveMessage waits for first."""
    s3, sqs, sns, bucket = stack.s3, stack.sqs, stack.sns, stack.bucket
    image = face_png((40, 120, 200), size=IMAGE_SIZE)
    record = json.dumps({"status": "pending", "padding": "x" * 800})

    def upload(i: int) -> Any:
        return s3.put_object(Bucket=bucket, Key=f"uploads/{i}.png", Body=image)

    def receive(i: int) -> Any:
        if i == 0:  # the queue as deep as asked: the uploads' notifications are in it already
            while int(stack.queue_depth()) < depth:
                time.sleep(0.05)
        got = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=1)
        for message in got.get("Messages", []):  # keep the depth: put it back at once
            sqs.change_message_visibility(
                QueueUrl=stack.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        return got

    def record_missing(i: int) -> Any:
        try:
            return s3.head_object(Bucket=bucket, Key=f"results/uploads/{i}.png.json")
        except s3.exceptions.ClientError:
            return None

    return {
        "PutObject (an upload; S3 → SQS)": upload,
        "ReceiveMessage + ChangeMessageVisibility": receive,
        "HeadObject (the upload, re-checked)": lambda i: s3.head_object(
            Bucket=bucket, Key=f"uploads/{i}.png"
        ),
        "HeadObject (no record yet: 404)": record_missing,
        "GetObject, 32-byte range (opening the upload)": lambda i: s3.get_object(
            Bucket=bucket, Key=f"uploads/{i}.png", Range="bytes=0-31"
        )["Body"].read(),
        "PutObject (the record, If-None-Match)": lambda i: s3.put_object(
            Bucket=bucket, Key=f"results/uploads/{i}.png.json", Body=record, IfNoneMatch="*"
        ),
        "Publish (SNS → subscribed SQS)": lambda i: sns.publish(
            TopicArn=stack.topic_arn,
            Message=json.dumps({"default": record, "email": "text"}),
            MessageStructure="json",
        ),
    }


def measure(stock: bool, count: int) -> dict[str, tuple[float, float]]:
    figures: dict[str, tuple[float, float]] = {}
    with ExitStack() as stack_:
        endpoint, pid = start_moto(stack_, stock=stock)
        stack = Stack.create(endpoint)
        time.sleep(1.0)  # the bucket's s3:TestEvent
        stack.sqs.purge_queue(QueueUrl=stack.queue_url)
        for name, call in calls(stack, count).items():
            cpu, wall = cpu_s(pid), time.perf_counter()
            for i in range(count):
                call(i)
            figures[name] = (
                (cpu_s(pid) - cpu) * 1000 / count,
                (time.perf_counter() - wall) * 1000 / count,
            )
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=96, help="calls of each kind")
    args = parser.parse_args(argv)
    stock = measure(True, args.calls)
    fast = measure(False, args.calls)
    print(f"\nmoto CPU ms per call (wall ms seen by boto3); {args.calls} calls of each kind")
    print(f"  {'call':44s} {'as released':>18s} {'with speed-ups':>18s}")
    for name, (cpu, wall) in stock.items():
        cpu2, wall2 = fast[name]
        print(f"  {name:44s} {cpu:7.2f} ({wall:6.2f}) {cpu2:9.2f} ({wall2:6.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
