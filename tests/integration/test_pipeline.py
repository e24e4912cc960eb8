"""The whole path over HTTP: upload → S3 notification → SQS → `worker run` → SNS → subscriber,
against moto and against LocalStack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.integration.harness import Stack, WorkerProcess
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, CAROL, face_png

pytestmark = [pytest.mark.slow, pytest.mark.emulators("moto", "localstack")]

StartWorker = Callable[..., WorkerProcess]


def seed_references(stack: Stack) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    stack.put("references/bob/1.png", face_png(BOB))
    stack.put("references/bob/2.png", face_png(BOB, size=(300, 200)))
    stack.put("references/nobody.png", face_png())  # no face: logged once, left out


def test_match_no_match_and_no_face(stack: Stack, start_worker: StartWorker) -> None:
    seed_references(stack)
    worker = start_worker()
    stack.put("uploads/party 1.png", face_png(ALICE))
    stack.put("uploads/stranger.png", face_png(CAROL))
    stack.put("uploads/empty room.png", face_png())

    published = {p.record["key"]: p for p in stack.published(3)}
    stack.no_more_published()

    party = published["uploads/party 1.png"]
    assert party.record["status"] == "matched"
    assert [m["label"] for m in party.record["matches"]] == ["alice"]
    assert party.record["matches"][0]["reference_key"] == "references/alice.png"
    assert party.record["matches"][0]["similarity"] >= 99
    assert party.subject == "Match: alice (99.3%) in uploads/party 1.png"
    assert party.attributes["status"]["Value"] == "matched"
    assert json.loads(party.attributes["labels"]["Value"]) == ["alice"]
    # nobody.png counts until Rekognition has found it faceless (uploads race for that).
    assert party.record["references"] in (3, 4)

    assert published["uploads/stranger.png"].record["status"] == "no_match"
    assert published["uploads/stranger.png"].subject == "No match: uploads/stranger.png"
    assert published["uploads/empty room.png"].record["status"] == "no_face"
    assert published["uploads/empty room.png"].subject == "No face: uploads/empty room.png"

    # The same records are durable in results/, keyed by the real (decoded) key.
    assert stack.record("uploads/party 1.png") == party.record
    stack.wait_drained()
    assert len(worker.events("reference_unusable")) == 1
    assert worker.terminate() == 0


def test_two_people_in_one_upload(stack: Stack, start_worker: StartWorker) -> None:
    seed_references(stack)
    start_worker()
    stack.put("uploads/couple.png", face_png(BOB, ALICE, CAROL, size=(400, 160)))
    (result,) = stack.published(1)
    record = result.record
    assert record["status"] == "matched"
    assert record["faces_detected"] == 3
    assert sorted(m["label"] for m in record["matches"]) == ["alice", "bob"]
    boxes = {m["label"]: m["face"] for m in record["matches"]}
    assert boxes["bob"]["left"] < boxes["alice"]["left"], "each label carries its own face's box"
    # bob has two references: one entry for the label, not one per photo.
    assert len(record["matches"]) == 2


def test_duplicate_event_publishes_once(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    seed_references(stack)
    stack.put("uploads/dup.png", face_png(ALICE))
    # Capture the real notification, then deliver it a second time. LocalStack, like AWS, sends
    # it a moment after the PUT (moto during it): wait for it.
    upload_bodies: list[str] = []
    deadline = time.monotonic() + 10
    while not upload_bodies and time.monotonic() < deadline:
        message = stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for m in message.get("Messages", []):
            stack.sqs.change_message_visibility(
                QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
        upload_bodies = [m["Body"] for m in message.get("Messages", []) if "dup.png" in m["Body"]]
    assert upload_bodies
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=upload_bodies[0])
    worker = start_worker()
    (result,) = stack.published(1)
    assert result.record["key"] == "uploads/dup.png"
    stack.no_more_published()
    stack.wait_drained()
    assert worker.events("upload_duplicate")
    # A new upload under the same key is a new upload: a new result replaces the record.
    stack.put("uploads/dup.png", face_png(BOB))
    (again,) = stack.published(1)
    assert again.record["matches"][0]["label"] == "bob"
    assert stack.record("uploads/dup.png")["etag"] == again.record["etag"]


def test_test_event_and_foreign_prefix_are_acknowledged(
    stack: Stack, start_worker: StartWorker
) -> None:
    worker = start_worker()
    stack.wait_drained()  # the s3:TestEvent sent when the notification was configured
    assert worker.events("s3_test_event")
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=json.dumps(
            {
                "Records": [
                    {
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": stack.bucket},
                            "object": {"key": "results/x.json"},
                        },
                    }
                ]
            }
        ),
    )
    stack.wait_drained()
    assert [e["reason"] for e in worker.events("object_skipped")] == ["outside UPLOAD_PREFIX"]
    stack.no_more_published(wait=1)


def test_malformed_body_goes_to_the_dlq_with_reason(
    stack: Stack, start_worker: StartWorker
) -> None:
    worker = start_worker()
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="this is not an event")
    stack.wait_drained()
    dead = stack.sqs.receive_message(
        QueueUrl=stack.dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=2
    )["Messages"]
    assert dead[0]["Body"] == "this is not an event"
    attributes = dead[0]["MessageAttributes"]
    assert attributes["error_type"]["StringValue"] == "BadMessage"
    assert "not JSON" in attributes["error_message"]["StringValue"]
    assert worker.proc.poll() is None, "the worker keeps running"


def test_throttling_is_retried_without_loss(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    seed_references(stack)
    start_worker()
    fake_rekognition.throttle(4)
    stack.put("uploads/busy.png", face_png(ALICE))
    (result,) = stack.published(1, timeout=60)
    assert result.record["status"] == "matched"
    assert fake_rekognition.calls["Throttled"] == 4


def test_sigterm_while_busy_finishes_or_releases(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    seed_references(stack)
    for i in range(12):
        stack.put(f"uploads/batch/{i}.png", face_png(ALICE if i % 2 else BOB))
    worker = start_worker(CONCURRENCY="4", SHUTDOWN_GRACE_SECONDS="10")
    fake_rekognition.throttle(6)  # keep some uploads in flight when the signal lands
    time.sleep(0.5)
    started = time.monotonic()
    assert worker.terminate(timeout=20) == 0
    assert time.monotonic() - started < 12
    assert worker.events("worker_stopped")
    # Nothing lost: a second worker finishes the rest, every upload has exactly one result.
    start_worker()
    results = stack.published(12, timeout=60)
    stack.no_more_published()
    assert sorted(r.record["key"] for r in results) == sorted(
        f"uploads/batch/{i}.png" for i in range(12)
    )
