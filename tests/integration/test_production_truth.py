"""What AWS and uploaders really do to one upload between two Rekognition calls (issue 10).

The pipeline runs in this process with real boto3 clients against the moto server and the
fake Rekognition, whose fault hooks (``before_call``, ``unreadable_keys``) replay what AWS does:
an upload deleted or replaced between DetectFaces and CompareFaces, an object that exists but that
Rekognition may not read (``InvalidS3ObjectException``, as for a KMS key it may not use).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from tests.integration.harness import Stack
from tests.records import a_record
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, CAROL, face_png
from worker.app import build_pipeline
from worker.aws.clients import make_clients
from worker.outcomes import Ack, RetryLater
from worker.pipeline import Pipeline
from worker.settings import load_settings
from worker.telemetry.metrics import Metrics


@dataclass
class Harness:
    stack: Stack
    fake: FakeRekognition
    pipeline: Pipeline

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        answer: dict[str, Any] = self.stack.s3.put_object(
            Bucket=self.stack.bucket, Key=key, Body=body
        )
        return answer

    def delete(self, key: str) -> None:
        self.stack.s3.delete_object(Bucket=self.stack.bucket, Key=key)

    def event(self, key: str, *, etag: str | None = None, version: str | None = None) -> str:
        obj: dict[str, Any] = {"key": key}
        if etag:
            obj["eTag"] = etag.strip('"')
        if version:
            obj["versionId"] = version
        record = {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": self.stack.bucket}, "object": obj},
        }
        return json.dumps({"Records": [record]})

    def handle(self, key: str, **kwargs: str | None) -> Any:
        return self.pipeline.handle(self.event(key, **kwargs))

    def record(self, key: str) -> dict[str, Any] | None:
        try:
            return self.stack.record(key)
        except self.stack.s3.exceptions.NoSuchKey:
            return None

    def published(self) -> list[dict[str, Any]]:
        found = []
        while True:
            messages = self.stack._receive(self.stack.results_queue_url, wait=0)
            if not messages:
                return found
            found += [json.loads(json.loads(m["Body"])["Message"]) for m in messages]


@pytest.fixture
def make(
    stack: Stack,
    fake_rekognition: FakeRekognition,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Harness]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", fake_rekognition.endpoint)

    def build(**settings: Any) -> Harness:
        config = load_settings(
            bucket_name=stack.bucket,
            sns_topic_arn=stack.topic_arn,
            queue_url=stack.queue_url,
            strategy=settings.pop("strategy", "compare"),
            reference_cache_ttl_seconds=300,
            **settings,
        )
        return Harness(stack, fake_rekognition, build_pipeline(config, make_clients(), Metrics()))

    yield build
    fake_rekognition.reset()


def indexed_images(h: Harness) -> set[str | None]:
    """The ExternalImageId of every face in the (one) collection."""
    (collection,) = h.fake.backend.collections.values()
    return {face.external_image_id for face in collection.faces.values()}


def seed(h: Harness) -> None:
    h.put("references/alice.png", face_png(ALICE))
    h.put("references/bob.png", face_png(BOB))


def once(action: str, effect: Callable[[], None]) -> Callable[[str, dict[str, Any]], None]:
    """A ``before_call`` hook that runs ``effect`` before the first call of ``action``."""
    done = threading.Event()

    def hook(name: str, _params: dict[str, Any]) -> None:
        if name == action and not done.is_set():
            done.set()
            effect()

    return hook


# --------------------------------------------------------------------------- defect 1


def test_an_upload_deleted_between_detect_and_compare_blames_no_reference(
    make: Callable[..., Harness],
) -> None:
    h = make()
    seed(h)
    h.put("uploads/gone.png", face_png(ALICE))
    h.fake.before_call = once("CompareFaces", lambda: h.delete("uploads/gone.png"))

    assert h.handle("uploads/gone.png") == Ack(reason="object gone")
    assert h.record("uploads/gone.png") is None
    assert h.published() == []

    # The next upload on this replica is still matched against both references.
    h.put("uploads/bob.png", face_png(BOB))
    assert h.handle("uploads/bob.png") == Ack()
    record = h.record("uploads/bob.png")
    assert record is not None
    assert (record["status"], record["references"]) == ("matched", 2)
    assert [m["label"] for m in record["matches"]] == ["bob"]


def test_a_reference_is_blamed_only_when_its_own_photo_is_unusable(
    make: Callable[..., Harness],
) -> None:
    h = make()
    seed(h)
    h.put("references/carol.png", face_png())  # no face at all: proven about the reference
    h.put("uploads/alice.png", face_png(ALICE))

    assert h.handle("uploads/alice.png") == Ack()
    record = h.record("uploads/alice.png")
    assert record is not None
    assert (record["status"], record["references"]) == ("matched", 2)
    assert [ref.key for ref in h.pipeline.references.get()] == [
        "references/alice.png",
        "references/bob.png",
    ]
    # A reference change (its notification) clears the mark, even for the same photo again.
    h.pipeline.references.invalidate()
    assert len(h.pipeline.references.get()) == 3


def test_a_reference_rekognition_may_not_read_is_skipped_and_the_upload_still_gets_its_result(
    make: Callable[..., Harness],
) -> None:
    h = make()
    seed(h)
    h.fake.unreadable_keys.add("references/bob.png")  # a KMS key the role may not use, say
    h.put("uploads/alice.png", face_png(ALICE))

    assert h.handle("uploads/alice.png") == Ack()
    record = h.record("uploads/alice.png")
    assert record is not None
    assert [m["label"] for m in record["matches"]] == ["alice"]
    assert [ref.key for ref in h.pipeline.references.get()] == ["references/alice.png"]


def test_the_shared_collection_keeps_faces_this_replica_could_not_read(
    make: Callable[..., Harness],
) -> None:
    h = make(strategy="collection")
    seed(h)
    h.put("uploads/one.png", face_png(ALICE))
    assert h.handle("uploads/one.png") == Ack()
    indexed = indexed_images(h)
    assert len(indexed) == 2

    # This replica marks bob's photo unusable (whatever the reason); then the references change.
    bob = next(r for r in h.pipeline.references.get() if r.label == "bob")
    h.pipeline.references.mark_unusable(bob, "could not be read by this replica")
    h.put("references/carol.png", face_png(CAROL))
    h.pipeline.references._listed_at = None  # the TTL ran out (no notification reached us)
    h.put("uploads/two.png", face_png(CAROL))
    assert h.handle("uploads/two.png") == Ack()

    faces = indexed_images(h)
    assert indexed < faces, "a face of a photo still in the bucket was deleted"
    assert len(faces) == 3


# --------------------------------------------------------------------------- defect 2


def test_an_upload_rekognition_cannot_read_while_it_exists_is_retried_with_its_reason(
    make: Callable[..., Harness],
) -> None:
    h = make()
    seed(h)
    h.put("uploads/kms.png", face_png(ALICE))
    h.fake.unreadable_keys.add("uploads/kms.png")

    outcome = h.handle("uploads/kms.png")
    assert isinstance(outcome, RetryLater)
    assert outcome.error_type == "UnreadableObject"
    assert "Check object key, region and/or access permissions" in outcome.reason
    assert h.record("uploads/kms.png") is None
    assert len(h.pipeline.references.get()) == 2  # nothing blamed on the references


def test_an_upload_rekognition_cannot_read_because_it_is_gone_is_acknowledged(
    make: Callable[..., Harness],
) -> None:
    h = make()
    seed(h)
    h.put("uploads/gone.png", face_png(ALICE))
    h.fake.before_call = once("DetectFaces", lambda: h.delete("uploads/gone.png"))
    assert h.handle("uploads/gone.png") == Ack(reason="object gone")
    assert h.published() == []


# --------------------------------------------------------------------------- defect 5


def test_an_overwrite_mid_processing_drops_the_result_and_the_newer_event_reports_the_newer_photo(
    make: Callable[..., Harness],
) -> None:
    h = make()
    seed(h)
    first = h.put("uploads/same.png", face_png(ALICE))["ETag"]
    replaced: dict[str, str] = {}

    def overwrite() -> None:
        replaced["etag"] = h.put("uploads/same.png", face_png(BOB))["ETag"]

    h.fake.before_call = once("CompareFaces", overwrite)
    assert h.handle("uploads/same.png", etag=first) == Ack(reason="superseded by a newer upload")
    assert h.record("uploads/same.png") is None
    assert h.published() == []

    h.fake.before_call = None
    assert h.handle("uploads/same.png", etag=replaced["etag"]) == Ack()
    record = h.record("uploads/same.png")
    assert record is not None
    assert record["etag"] == replaced["etag"].strip('"')
    assert [m["label"] for m in record["matches"]] == ["bob"]
    assert len(h.published()) == 1


def test_versioned_bucket_reports_the_exact_version_and_nothing_for_a_deleted_upload(
    make: Callable[..., Harness],
) -> None:
    h = make()
    h.stack.s3.put_bucket_versioning(
        Bucket=h.stack.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    seed(h)
    v1 = h.put("uploads/v.png", face_png(ALICE))["VersionId"]
    h.fake.before_call = once("CompareFaces", lambda: h.put("uploads/v.png", face_png(BOB)))
    assert h.handle("uploads/v.png", version=v1) == Ack()
    record = h.record("uploads/v.png")
    assert record is not None
    assert (record["version_id"], [m["label"] for m in record["matches"]]) == (v1, ["alice"])

    h.fake.before_call = None
    v3 = h.put("uploads/deleted.png", face_png(ALICE))["VersionId"]
    h.stack.s3.delete_object(Bucket=h.stack.bucket, Key="uploads/deleted.png")  # a delete marker
    assert h.handle("uploads/deleted.png", version=v3) == Ack(reason="object gone")
    assert h.record("uploads/deleted.png") is None


# --------------------------------------------------------------------------- defect 3


def test_concurrent_takeovers_of_a_dead_writers_record_notify_once(
    make: Callable[..., Harness],
) -> None:
    replicas = [make() for _ in range(4)]
    h = replicas[0]
    seed(h)
    etag = h.put("uploads/crash.png", face_png(ALICE))["ETag"].strip('"')
    # The state a replica leaves when it dies between writing the record and publishing it.
    record = a_record(
        bucket=h.stack.bucket, key="uploads/crash.png", etag=etag, faces_detected=1, references=2
    )
    h.pipeline.store.write(record, upload_id=etag, sequencer=None, expect_etag=None)

    barrier = threading.Barrier(len(replicas), timeout=20)
    for replica in replicas:
        original, first = replica.pipeline.store.lookup, threading.Event()

        def lookup(key: str, original: Any = original, first: threading.Event = first) -> Any:
            found = original(key)
            if not first.is_set():  # all four find the record past its lease, together
                first.set()
                barrier.wait()
                return found and replace(found, age_seconds=10_000.0)
            return found

        replica.pipeline.store.lookup = lookup  # type: ignore[method-assign]

    outcomes: list[Any] = [None] * len(replicas)

    def deliver(index: int) -> None:
        outcomes[index] = replicas[index].handle("uploads/crash.png")

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes.count(Ack(reason="published a pending record")) == 1, outcomes
    assert all(isinstance(o, Ack) for o in outcomes), outcomes
    published = h.published()
    assert len(published) == 1
    assert published[0] == h.record("uploads/crash.png")
    assert h.pipeline.store.lookup("uploads/crash.png").notified


# --------------------------------------------------------------------------- defect 4


def fail_calls(client: Any, operation: str, when: Callable[[Any], bool] = lambda _r: True) -> None:
    """Make ``client`` answer ``operation`` with a 503 (botocore's real error path)."""

    def answer(request: Any, **_kwargs: Any) -> AWSResponse | None:
        if not when(request):
            return None
        return AWSResponse(
            request.url, 503, {}, _Raw(b"<Error><Code>ServiceUnavailable</Code></Error>")
        )

    client.meta.events.register_first(
        f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}", answer
    )


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._body


def test_a_writer_that_cannot_mark_its_record_sent_stops_within_its_lease_and_sends_once(
    make: Callable[..., Harness],
) -> None:
    h = make()
    h.pipeline.writer_budget_seconds, h.pipeline.writer_attempt_seconds = 2.0, 0.5
    seed(h)
    h.put("uploads/a.png", face_png(ALICE))
    marks_sent = lambda request: b"sent" in str(request.headers).encode()  # noqa: E731
    fail_calls(h.pipeline.store._writes, "PutObject", marks_sent)

    started = time.monotonic()
    assert h.handle("uploads/a.png") == Ack()  # the notification went out: nothing to retry
    assert time.monotonic() - started < 10  # within the (shortened) lease, not 60 s of retries
    assert len(h.published()) == 1
    assert not h.pipeline.store.lookup("uploads/a.png").notified  # left pending, and said so


def test_a_publish_that_keeps_failing_leaves_the_record_to_a_later_delivery_within_the_lease(
    make: Callable[..., Harness],
) -> None:
    h = make()
    h.pipeline.writer_budget_seconds, h.pipeline.writer_attempt_seconds = 2.0, 0.5
    seed(h)
    h.put("uploads/a.png", face_png(ALICE))
    fail_calls(h.pipeline.publisher._sns, "Publish")

    started = time.monotonic()
    outcome = h.handle("uploads/a.png")
    assert isinstance(outcome, RetryLater)
    assert time.monotonic() - started < 10
    assert h.published() == []
    assert not h.pipeline.store.lookup("uploads/a.png").notified
