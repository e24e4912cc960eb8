"""One SQS message end to end: parse → S3 object → image → faces → matches → record → publish.

Every path ends in an :mod:`outcome <worker.outcomes>`; nothing here raises to the runner except
a bug. The order of the durable steps is what makes each upload end with exactly one result:

1. open the upload (a GET of its first bytes) and look up its record (HEAD
   ``results/<key>.json``): a ``sent`` record for the same upload → duplicate, acknowledge;
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
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from worker.aws.clients import LEASED_ATTEMPT_SECONDS
from worker.aws.retry import StopBeforeDeadline, with_retries
from worker.errors import (
    BadMessageError,
    InvalidImageError,
    ObjectGoneError,
    PermanentError,
    RetryableError,
    UnreadableObjectError,
    WorkerError,
)
from worker.events import ObjectRef, parse_body
from worker.faces import Reference
from worker.matching import best_per_label
from worker.objects import ObjectReplacedError, ObjectStore, Upload
from worker.outcomes import Ack, DeadLetter, Outcome, Partial, Resend, RetryLater, combine
from worker.publish import Publisher
from worker.recognition.strategy import (
    MatchStrategy,
    ReferenceFailure,
    StrategyResult,
    analyse,
)
from worker.references import ReferenceCache
from worker.results import (
    PUBLISH_LEASE_SECONDS,
    AlreadyDone,
    Process,
    PublishPending,
    ResultRecord,
    Superseded,
    WaitForWriter,
    build_record,
    decide,
)
from worker.settings import Settings
from worker.store import RecordConflict, ResultStore
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import Metric, Metrics, upload_status_metric

log = get_logger(__name__)

# A lost race for the record is re-decided this many times before the message is retried.
MAX_RECORD_RACES = 3
# A delivery that finds its upload's record "pending" watches it this long for the writer to
# finish before handing the message back until the publish lease ends.
WRITER_PATIENCE_SECONDS = 10.0
WRITER_POLL_SECONDS = 0.25
# Part of the publish lease a writer leaves unused (clock differences, the record's own write).
LEASE_SAFETY_SECONDS = 20.0


@dataclass
class Pipeline:
    settings: Settings
    objects: ObjectStore
    references: ReferenceCache
    strategy: MatchStrategy
    store: ResultStore
    publisher: Publisher
    metrics: Metrics
    probe: Callable[[Reference], str | None]
    publish_lease_seconds: float = PUBLISH_LEASE_SECONDS
    # How long after its write a writer may still try to publish and mark the record: the lease
    # less a margin for the clock of the replica that would take over (it measures the lease
    # from the record's LastModified, stamped by S3).
    writer_budget_seconds: float = PUBLISH_LEASE_SECONDS - LEASE_SAFETY_SECONDS
    # The longest one try of the publish or of a leased record write can take.
    writer_attempt_seconds: float = LEASED_ATTEMPT_SECONDS

    def handle(self, body: str) -> Outcome:
        """Process one SQS body, each S3 record on its own.

        A message of several records some of which are bad ends in a :class:`Partial`: the bad
        records, each with its own body, to be dead-lettered, and the outcome of the rest.
        """
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
        # Each record on its own: a bad one is dead-lettered alone, the others are processed.
        records = len(parsed.record_bodies)
        dead: list[DeadLetter] = []
        for problem in parsed.problems:
            log.warning("record_unparseable", record=problem.index, error=problem.reason)
            dead.append(
                DeadLetter(
                    error_type=BadMessageError.error_type,
                    error_message=f"{problem.reason} (record {problem.index} of a message of "
                    f"{records} records, dead-lettered alone)",
                    body=problem.body,
                )
            )
        done: list[Outcome] = []
        resends: list[Resend] = []
        for ref in parsed.objects:
            outcome = self.handle_object(ref)
            if isinstance(outcome, Partial):  # not something one object ends in; be safe
                dead.extend(outcome.dead_letters)
                outcome = outcome.rest
            if isinstance(outcome, DeadLetter):
                if not records:  # the message's only record: the message itself goes
                    return outcome
                dead.append(replace(outcome, body=parsed.record_bodies[ref.record_index]))
                continue
            done.append(outcome)
            if isinstance(outcome, RetryLater) and records:
                resends.append(Resend(parsed.record_bodies[ref.record_index], outcome))
        rest = combine(done)  # Ack("nothing to do") when nothing was done
        if not dead:
            return rest
        return Partial(
            dead_letters=tuple(dead),
            rest=rest,
            resends=tuple(resends) if isinstance(rest, RetryLater) else (),
        )

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
            except ObjectReplacedError as exc:
                log.info("upload_superseded", error=str(exc))
                return Ack(reason="superseded by a newer upload")
            except ObjectGoneError as exc:
                log.info("upload_gone", error=str(exc))
                return Ack(reason="object gone")
            except RetryableError as exc:
                log.warning("upload_retry_later", error=str(exc))
                return RetryLater(reason=str(exc))
            except PermanentError as exc:
                # Not the image's fault (an upload Rekognition may not read although it exists,
                # access denied, a misconfiguration): retried with backoff, and dead-lettered
                # with this reason if it never succeeds — an operator must see it.
                log.error("upload_failed", error=str(exc), code=exc.code)
                return RetryLater(reason=str(exc), error_type=exc.error_type)
            return outcome

    def _process(self, ref: ObjectRef, started: float) -> Outcome:
        upload = self.objects.open(ref)
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
                self.metrics.incr(Metric.DUPLICATE_DELIVERIES)
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
                # The writer died before publishing. Claim the record first (a conditional
                # rewrite that starts a new lease): of several deliveries taking over at once,
                # only the one whose claim lands publishes.
                record = self.store.read(upload.key).with_notification_id()
                if not self._write_and_publish(
                    record, upload, ref.sequencer, decision.record_etag, claim=True
                ):
                    log.info("record_claim_lost")
                    races += 1
                    continue
                log.info("upload_publish_recovered", status=record.status.value)
                return Ack(reason="published a pending record")
            record = self._compute(upload, started).with_notification_id()
            expect = decision.expect_etag if isinstance(decision, Process) else None
            if not self._write_and_publish(record, upload, ref.sequencer, expect):
                log.info("record_race_lost")
                races += 1
                continue
            self.metrics.incr(upload_status_metric(record.status))
            self.metrics.observe(Metric.UPLOAD_LATENCY_MS, record.duration_ms)
            log.info(
                "upload_processed",
                status=record.status.value,
                faces=record.faces_detected,
                labels=[m.label for m in record.matches],
                duration_ms=record.duration_ms,
            )
            return Ack()
        return RetryLater(reason="result record kept changing under us")

    def _compute(self, upload: Upload, started: float) -> ResultRecord:
        threshold = self.settings.similarity_threshold
        result = StrategyResult([], [], references=0, strategy=self.strategy.name)
        reason: str | None = None
        try:
            image = self.objects.image_for_rekognition(upload)
            result = analyse(self.strategy, image, threshold)
        except InvalidImageError as exc:
            reason = str(exc)
        except UnreadableObjectError:
            # Gone, replaced, or there but unreadable to Rekognition (KMS, permission, region):
            # only S3 can tell which. The first two end here; the last is retried, then
            # dead-lettered with its reason.
            self.objects.recheck(upload)
            raise
        # Rekognition read the key a moment ago; a result is only kept for the photo it describes.
        self.objects.recheck(upload)
        for reference, problem in result.unusable:
            self.references.mark_unusable(reference, problem)
        if result.failures:
            self._judge_failures(result.failures)
        return build_record(
            bucket=upload.bucket,
            key=upload.key,
            version_id=upload.version_id,
            etag=upload.etag,
            faces_detected=len(result.faces),
            matches=best_per_label(result.candidates, threshold),
            threshold=threshold,
            references=result.references - len(result.failures),
            strategy=result.strategy,
            duration_ms=int((time.monotonic() - started) * 1000),
            reason=reason,
            invalid=reason is not None,
        )

    def _judge_failures(self, failures: tuple[ReferenceFailure, ...]) -> None:
        """Blame a reference only when the photo alone proves it unusable; else fail the upload.

        The upload was just re-checked, so it is still there; a comparison that failed while
        both photos are fine is the upload's problem (retried, then dead-lettered).
        """
        unexplained: list[ReferenceFailure] = []
        for failure in failures:
            problem = self.probe(failure.reference)
            if problem is None:
                unexplained.append(failure)
            else:
                self.references.mark_unusable(failure.reference, problem)
        if unexplained:
            first = unexplained[0]
            raise UnreadableObjectError(
                f"comparing with {len(unexplained)} reference(s) failed although each reference "
                f"is usable on its own: {first.error}",
                code=first.error.code,
            ) from first.error

    def _write_and_publish(
        self,
        record: ResultRecord,
        upload: Upload,
        sequencer: str | None,
        expect_etag: str | None,
        *,
        claim: bool = False,
    ) -> bool:
        """Write the record conditionally (or, with ``claim``, take over a dead writer's), then
        publish it; False when another delivery's write won the race."""
        written_at = time.monotonic()
        try:
            etag = self.store.write(
                record,
                upload_id=upload.identity,
                sequencer=sequencer,
                expect_etag=expect_etag,
                leased=claim,
            )
        except RecordConflict:
            return False
        self._publish(record, upload, sequencer, etag, written_at)
        return True

    def _publish(
        self,
        record: ResultRecord,
        upload: Upload,
        sequencer: str | None,
        etag: str,
        written_at: float,
    ) -> None:
        """Publish the record written (or claimed) at ``written_at``, then mark it sent.

        Every try ends before the publish lease of that write does, so a writer never outlives
        its lease: past it, another delivery may take the record over and publish it. Not
        published in time → the record stays pending and the message is retried (a later
        delivery claims it). Published but not marked sent in time → the message is still
        acknowledged: the notification went out, and no delivery is left to send it again.
        """
        deadline = StopBeforeDeadline(
            written_at + self.writer_budget_seconds, attempt_seconds=self.writer_attempt_seconds
        )
        message_id = with_retries(lambda: self.publisher.publish(record), deadline=deadline)
        try:
            with_retries(
                lambda: self.store.mark_notified(
                    record, upload_id=upload.identity, sequencer=sequencer, etag=etag
                ),
                deadline=deadline,
            )
        except WorkerError as exc:
            log.error(
                "record_left_pending",
                error=str(exc),
                sns_message_id=message_id,
                hint="published; a repeated S3 event for this upload after the lease would "
                "publish it again",
            )
            return
        log.info("result_published", sns_message_id=message_id, status=record.status.value)

    def _reference_changed(self, ref: ObjectRef) -> None:
        if ref.key.startswith(self.settings.reference_prefix):
            log.info("reference_changed", reference_key=ref.key, s3_event=ref.event_name)
            self.references.invalidate()
