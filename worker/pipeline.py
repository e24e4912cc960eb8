"""One SQS message end to end: parse → S3 object → image → faces → matches → record → publish.

Every path ends in an :mod:`outcome <worker.outcomes>`; nothing here raises to the runner except
a bug. The order of the durable steps is what makes each upload end with exactly one result:

1. look up the record of this upload (HEAD ``results/<key>.json``): a ``sent`` record for the same
   upload → duplicate, acknowledge;
2. compute the result (Rekognition);
3. write the record conditionally, marked ``pending``; a lost race → re-decide;
4. publish to SNS;
5. mark the record ``sent``; then the runner deletes the SQS message.

A crash before 3 redoes the work; between 3 and 4, a later delivery publishes the stored record
once the publish lease expires; after 4 and before 5, the same happens, and that one window (a few
milliseconds: one S3 write) is the only way a second email can be sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from worker.errors import (
    BadMessageError,
    InvalidImageError,
    ObjectGoneError,
    PermanentError,
    RetryableError,
)
from worker.events import ObjectRef, parse_body
from worker.logs import get_logger
from worker.matching import best_per_label
from worker.metrics import Metrics
from worker.objects import ObjectStore, Upload
from worker.outcomes import Ack, DeadLetter, Outcome, RetryLater, combine
from worker.publish import Publisher
from worker.recognition.compare import StrategyResult
from worker.recognition.strategies import MatchStrategy
from worker.references import ReferenceCache
from worker.results import (
    PUBLISH_LEASE_SECONDS,
    AlreadyDone,
    Process,
    PublishPending,
    Superseded,
    WaitForWriter,
    build_record,
    decide,
)
from worker.retry import with_retries
from worker.settings import Settings
from worker.store import RecordConflict, ResultStore

log = get_logger(__name__)

# A lost race for the record is re-decided this many times before the message is retried.
MAX_RECORD_RACES = 3
# A delivery that finds its upload's record "pending" watches it this long for the writer to
# finish before handing the message back until the publish lease ends.
WRITER_PATIENCE_SECONDS = 10.0
WRITER_POLL_SECONDS = 0.25


@dataclass
class Pipeline:
    settings: Settings
    objects: ObjectStore
    references: ReferenceCache
    strategy: MatchStrategy
    store: ResultStore
    publisher: Publisher
    metrics: Metrics
    publish_lease_seconds: float = PUBLISH_LEASE_SECONDS

    def handle(self, body: str) -> Outcome:
        """Process one SQS body."""
        try:
            parsed = parse_body(body)
        except BadMessageError as exc:
            log.warning("message_unparseable", error=str(exc))
            return DeadLetter(error_type=exc.error_type, error_message=str(exc))
        if parsed.test_event:
            log.info("s3_test_event", envelope=parsed.envelope)
            return Ack(reason="s3:TestEvent")
        for removed in parsed.removed:
            self._reference_changed(removed)
        outcomes = [self.handle_object(ref) for ref in parsed.objects]
        return combine(outcomes) if outcomes else Ack(reason="nothing to do")

    def handle_object(self, ref: ObjectRef) -> Outcome:
        with structlog.contextvars.bound_contextvars(bucket=ref.bucket, key=ref.key):
            if ref.bucket != self.settings.bucket_name:
                log.info("object_skipped", reason="another bucket")
                return Ack(reason="another bucket")
            if ref.key.startswith(self.settings.reference_prefix):
                self._reference_changed(ref)
                return Ack(reason="reference changed")
            if not ref.key.startswith(self.settings.upload_prefix):
                log.info("object_skipped", reason="outside UPLOAD_PREFIX")
                return Ack(reason="outside upload prefix")
            started = time.monotonic()
            try:
                outcome = self._process(ref, started)
            except ObjectGoneError as exc:
                log.info("upload_gone", error=str(exc))
                return Ack(reason="object gone")
            except RetryableError as exc:
                log.warning("upload_retry_later", error=str(exc))
                return RetryLater(reason=str(exc))
            except PermanentError as exc:
                # Not the image's fault (access denied, a misconfiguration): keep the message,
                # the redrive policy dead-letters it if it never succeeds.
                log.error("upload_failed", error=str(exc), code=exc.code)
                return RetryLater(reason=str(exc))
            return outcome

    def _process(self, ref: ObjectRef, started: float) -> Outcome:
        upload = self.objects.head(ref)
        if ref.etag and not ref.version_id and ref.etag.strip('"') != upload.etag:
            log.info("upload_superseded", event_etag=ref.etag, current_etag=upload.etag)
            return Ack(reason="superseded by a newer upload")
        races = 0
        patience = time.monotonic() + WRITER_PATIENCE_SECONDS
        while races < MAX_RECORD_RACES:
            decision = decide(
                self.store.lookup(upload.key),
                upload.identity,
                ref.sequencer,
                lease_seconds=self.publish_lease_seconds,
            )
            if isinstance(decision, AlreadyDone):
                log.info("upload_duplicate")
                self.metrics.incr("DuplicateDeliveries")
                return Ack(reason="duplicate")
            if isinstance(decision, Superseded):
                log.info("upload_superseded", reason="a newer upload's record exists")
                return Ack(reason="superseded by a newer upload")
            if isinstance(decision, WaitForWriter):
                # Usually a concurrent duplicate that is milliseconds from done: look again
                # shortly; a writer that died is taken over when its lease runs out.
                if time.monotonic() < patience:
                    time.sleep(WRITER_POLL_SECONDS)
                    continue
                return RetryLater(reason="another delivery is publishing", delay=decision.seconds)
            if isinstance(decision, PublishPending):
                record = self.store.read(upload.key)
                self._publish(record, upload, ref.sequencer, decision.record_etag)
                log.info("upload_publish_recovered", status=record["status"])
                return Ack(reason="published a pending record")
            record = self._compute(upload, started)
            try:
                etag = self.store.write(
                    record,
                    upload_id=upload.identity,
                    sequencer=ref.sequencer,
                    expect_etag=decision.expect_etag if isinstance(decision, Process) else None,
                )
            except RecordConflict:
                log.info("record_race_lost")
                races += 1
                continue
            self._publish(record, upload, ref.sequencer, etag)
            self.metrics.incr(f"Uploads.{record['status']}")
            self.metrics.observe("UploadLatencyMs", record["duration_ms"])
            log.info(
                "upload_processed",
                status=record["status"],
                faces=record["faces_detected"],
                labels=[m["label"] for m in record["matches"]],
                duration_ms=record["duration_ms"],
            )
            return Ack()
        return RetryLater(reason="result record kept changing under us")

    def _compute(self, upload: Upload, started: float) -> dict[str, Any]:
        threshold = self.settings.similarity_threshold
        result = StrategyResult([], [], references=0, strategy=self.strategy.name)
        reason: str | None = None
        try:
            image = self.objects.image_for_rekognition(upload)
            result = self.strategy.analyse(image, threshold)
        except InvalidImageError as exc:
            reason = str(exc)
        return build_record(
            bucket=upload.bucket,
            key=upload.key,
            version_id=upload.version_id,
            etag=upload.etag,
            faces_detected=len(result.faces),
            matches=best_per_label(result.candidates, threshold),
            threshold=threshold,
            references=result.references,
            strategy=result.strategy,
            duration_ms=int((time.monotonic() - started) * 1000),
            reason=reason,
            invalid=reason is not None,
        )

    def _publish(
        self, record: dict[str, Any], upload: Upload, sequencer: str | None, etag: str
    ) -> None:
        # Once the record is written, an outage must not end this delivery: a record left
        # "pending" is published by a later delivery only when the lease ends — two minutes late,
        # or a second time if this publish went out. Each step is retried on its own here.
        message_id = with_retries(lambda: self.publisher.publish(record))
        with_retries(
            lambda: self.store.mark_notified(
                record, upload_id=upload.identity, sequencer=sequencer, etag=etag
            )
        )
        log.info("result_published", sns_message_id=message_id, status=record["status"])

    def _reference_changed(self, ref: ObjectRef) -> None:
        if ref.key.startswith(self.settings.reference_prefix):
            log.info("reference_changed", reference_key=ref.key, s3_event=ref.event_name)
            self.references.invalidate()
