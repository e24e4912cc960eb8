"""What the results topic's subscribers receive (docs/sns-subscribers.md), on moto.

The worker publishes with ``MessageStructure=json`` and two attributes, ``status`` and ``labels``
(worker/render.py). AWS evaluates a subscription's filter policy against the published message
attributes, and delivers per protocol the ``sqs``/``email``/``default`` text — without the
attributes, which AWS sends "only when the message structure is String, not JSON". moto differs
where noted: :func:`test_where_moto_differs_from_aws` pins its behaviour, so that a moto release
that changes it says so here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.harness import Stack, WorkerProcess
from tests.records import a_record
from tests.support.squares import ALICE, BOB, face_png
from worker.faces import Box, Candidate
from worker.publish import Publisher

pytestmark = pytest.mark.slow

StartWorker = Callable[..., WorkerProcess]
# docs/sns-subscribers.md: "only the results in which alice was recognised".
ALICE_ONLY = {"labels": ["alice"]}


def subscribe(stack: Stack, name: str, **attributes: str) -> str:
    """A new queue subscribed to the results topic; returns its URL."""
    url = stack.sqs.create_queue(QueueName=f"{stack.bucket}-{name}")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    stack.sns.subscribe(
        TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes
    )
    return url


def drain(stack: Stack, url: str, wait: float = 3.0) -> list[dict[str, Any]]:
    """Every message on ``url`` until none came for ``wait`` seconds (attributes included)."""
    found: list[dict[str, Any]] = []
    quiet_until = time.monotonic() + wait
    while time.monotonic() < quiet_until:
        messages = stack._receive(url)
        if messages:
            found += messages
            quiet_until = time.monotonic() + wait
    return found


def upload_three(stack: Stack, start_worker: StartWorker) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    stack.put("references/bob.png", face_png(BOB))
    start_worker()
    stack.put("uploads/alice.png", face_png(ALICE))
    stack.put("uploads/both.png", face_png(BOB, ALICE))
    stack.put("uploads/bob.png", face_png(BOB))
    stack.published(3)  # the unfiltered subscription got all three


def test_a_label_filter_policy_receives_only_the_results_naming_that_label(
    stack: Stack, start_worker: StartWorker
) -> None:
    filtered = subscribe(stack, "alice", FilterPolicy=json.dumps(ALICE_ONLY))
    raw = subscribe(stack, "raw", RawMessageDelivery="true")
    upload_three(stack, start_worker)

    received = [json.loads(json.loads(m["Body"])["Message"]) for m in drain(stack, filtered)]
    assert sorted(r["key"] for r in received) == ["uploads/alice.png", "uploads/both.png"]
    assert all("alice" in [m["label"] for m in r["matches"]] for r in received)

    # Raw delivery: the body is the `sqs` text, the record itself (as stored under results/).
    bodies = {json.loads(m["Body"])["key"]: json.loads(m["Body"]) for m in drain(stack, raw)}
    assert set(bodies) == {"uploads/alice.png", "uploads/both.png", "uploads/bob.png"}
    assert all(bodies[key] == stack.record(key) for key in bodies)


def test_where_moto_differs_from_aws(stack: Stack) -> None:
    """moto (5.x) on a JSON-structure publish with attributes, against AWS's documentation:

    - it puts the attributes in the SQS envelope and, with raw delivery, as SQS message
      attributes; AWS sends them "only when the message structure is String, not JSON";
    - it applies a MessageBody-scope filter policy to the published JSON structure
      (``{"default": …, "sqs": …, "email": …}``), before choosing the protocol's text: a policy on
      the record's fields never matches. AWS does not document which body it filters then.
    """
    envelope = subscribe(stack, "envelope")
    raw = subscribe(stack, "raw", RawMessageDelivery="true")
    body_scope = subscribe(
        stack,
        "body",
        FilterPolicy=json.dumps({"status": ["matched"]}),
        FilterPolicyScope="MessageBody",
    )
    alice = Candidate("alice", "references/a.png", 99.3, Box(0.1, 0.1, 0.2, 0.2))
    record = a_record(bucket=stack.bucket, faces_detected=1, matches=[alice], references=1)
    assert record.status == "matched"
    Publisher(stack.sns, stack.topic_arn).publish(record)

    (message,) = drain(stack, envelope)
    assert set(json.loads(message["Body"])["MessageAttributes"]) == {"status", "labels"}
    (message,) = drain(stack, raw)
    assert set(message["MessageAttributes"]) == {"status", "labels"}
    assert json.loads(message["Body"])["status"] == "matched"
    assert drain(stack, body_scope, wait=1.0) == []
