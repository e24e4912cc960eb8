"""The consumer loop: long-poll, fan out to worker threads, heartbeat, batched acks, shutdown.

Threads: a poller thread long-polls SQS and never processes; the main thread only waits for the
stop and then shuts down; ``CONCURRENCY`` worker threads run the pipeline and never touch the
queue; a heartbeat thread keeps in-flight messages invisible; an acker thread turns outcomes into
batched SQS calls. SIGTERM/SIGINT: stop receiving, let in-flight work finish until the grace period
ends, hand back what is left (visibility 0), exit 0; the heartbeat keeps in-flight messages hidden
until each is finished or handed back. A second signal exits at once (``os._exit`` after flushing
the logs) with 128 + the signal's number: 143 for SIGTERM, 130 for SIGINT; what was in flight
reappears when its visibility timeout ends.

The stop does not wait for a long poll that has more than ``POLL_END_WAIT_SECONDS`` to go: an idle
worker exits within a second or two, not up to ``POLL_WAIT_SECONDS`` later. A receive that returns
during the shutdown hands its messages back at once (visibility 0). One still open when the
process exits is abandoned: SQS keeps it open on its side, and a message that arrives before it
ends is delivered to nobody and reappears after its visibility timeout, with one more receive
counted — delayed, never lost (https://github.com/aws/aws-sdk-java-v2/issues/1395).

The health file (``HEALTH_FILE``, read by ``worker health``) is touched at start, after every
receive that succeeded, and every second while every slot is busy: it goes stale when the loop
stops *or* when receives keep failing (a deleted queue, expired credentials, SQS unreachable).

A message of several S3 records, some of which can never be processed (a :class:`Partial`
outcome): each bad record goes to the DLQ alone. When the others are done, the message is then
deleted; when some of them must be retried, the message is *split* — each record to retry is sent
back to the queue as a message of its own (delayed by the backoff), and only once every send
succeeded is the original deleted; if any send fails the original is kept for a retry, so nothing
is lost (a failed delete can only cause a repeat, which the result records absorb).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from structlog.contextvars import bound_contextvars

from worker.aws import sqs as sqs_edge
from worker.aws.errors import access_problem
from worker.outcomes import DeadLetter, Outcome, Partial, RetryLater, retry_delay
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import Metric, Metrics

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

    from worker.telemetry.emf import EmfExporter

log = get_logger(__name__)

# How long a message whose dead-lettering failed stays hidden before it is tried again.
DEAD_LETTER_FAILED_HIDE_SECONDS = 60
# An unprocessable message with no DLQ to go to stays on the queue, hidden this long (within the
# 12 h a message may be kept invisible in total).
NO_DLQ_HIDE_SECONDS = 11 * 60 * 60
# Pause after a failed receive before polling again.
RECEIVE_ERROR_PAUSE_SECONDS = 2.0
# How often the main thread, waiting for the stop, checks that the poller is still alive.
STOP_CHECK_SECONDS = 1.0
# At the stop, a long poll that ends within this long is waited for (what it brings is handed
# back); one that has longer to go is abandoned.
POLL_END_WAIT_SECONDS = 1.5
# Time kept at the end of the grace period for releasing messages and flushing acks.
SHUTDOWN_MARGIN_SECONDS = 2.0
# How long the acker waits to fill a batch before flushing.
ACK_LINGER_SECONDS = 0.05


@dataclass
class InFlight:
    message_id: str
    receipt_handle: str
    receive_count: int
    attributes: dict[str, MessageAttributeValueOutputTypeDef] = field(default_factory=dict)
    future: Future[Outcome] | None = None
    started: float = field(default_factory=time.monotonic)


# The contract's maxReceiveCount default, for a DLQ_URL given without a redrive policy.
DEFAULT_MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class RunnerConfig:
    queue_url: str
    dlq_url: str | None
    concurrency: int
    poll_wait_seconds: int = sqs_edge.MAX_WAIT_SECONDS
    visibility_timeout_seconds: int = 60
    grace_seconds: float = 25.0
    health_file: str | None = None
    # The queue's redrive maxReceiveCount: a message that is still failing for a cause with an
    # ``error_type`` at its last receive is dead-lettered by the worker, with that reason, rather
    # than moved silently by the redrive policy. (No redrive policy: the contract's default.)
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT


class Runner:
    def __init__(
        self,
        sqs: SQSClient,
        handler: Callable[[str], Outcome],
        config: RunnerConfig,
        metrics: Metrics | None = None,
        emf: EmfExporter | None = None,
    ) -> None:
        self._sqs = sqs
        self._emf = emf
        self._handler = handler
        self._cfg = config
        self._metrics = metrics or Metrics()
        self._stop = threading.Event()
        # Set once every in-flight message is finished or handed back: ends the heartbeat.
        self._released = threading.Event()
        # Held by the heartbeat while it renews, and by the shutdown while it takes the messages
        # to hand back out of the heartbeat's sight, so that a released message is never renewed.
        self._beat_lock = threading.Lock()
        self._stop_at: float | None = None
        self._lock = threading.Lock()
        self._inflight: dict[str, InFlight] = {}
        # A slot is one upload being computed: taken by the poller at dispatch, given back as soon
        # as the handler returns, so the next receive does not wait for the batched delete.
        self._slots = threading.Semaphore(config.concurrency)
        self._computing = 0  # guarded by ``_lock``
        self._acks: queue.Queue[tuple[InFlight, Outcome, str] | None] = queue.Queue()
        self._executor = ThreadPoolExecutor(config.concurrency, thread_name_prefix="upload")
        # When the poller's open receive ends (monotonic), None between receives; guarded by
        # ``_lock``, like the stop check before a dispatch: what the shutdown waits for or abandons.
        self._poll_ends: float | None = None
        self._poll_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            if self._stop.is_set():
                # SystemExit would only unwind the main thread, and the interpreter would then
                # join the worker threads (a minute when a call hangs): leave now.
                log.warning("second_signal_exiting_now", signal=signal.Signals(signum).name)
                _flush_logs()
                os._exit(128 + signum)
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            self._stop.set()

    def run(self) -> int:
        """Consume until stopped; return how many messages were handed back unfinished."""
        helpers = [
            threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
            threading.Thread(target=self._ack_loop, name="acker", daemon=True),
        ]
        for thread in helpers:
            thread.start()
        if self._emf:
            self._emf.start()
        log.info(
            "worker_started",
            queue_url=self._cfg.queue_url,
            dlq_url=self._cfg.dlq_url,
            concurrency=self._cfg.concurrency,
        )
        self._beat()
        poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        poller.start()
        try:
            # Signals reach the main thread here at once, whatever the poller is waiting for.
            while not self._stop.wait(STOP_CHECK_SECONDS) and poller.is_alive():
                pass
        finally:
            self.stop()
            released = self._shutdown()
            self._acks.put_nowait(None)  # wakes the acker to exit
            helpers[1].join(timeout=SHUTDOWN_MARGIN_SECONDS)
            self._released.set()  # every message is now settled or handed back
            self._end_polling(poller)
            if self._emf:
                self._emf.close()  # the last counters, DLQ sends of the final acks included
        log.info("worker_stopped", released=released)
        if self._poll_error is not None:
            raise self._poll_error
        return released

    # ------------------------------------------------------------------ polling

    def _poll_loop(self) -> None:
        """The poller thread. A crash stops the runner and is raised again by :meth:`run`."""
        try:
            while not self._stop.is_set():
                self._poll_once()
        except BaseException as exc:
            log.exception("poll_loop_crashed")
            self._poll_error = exc
            self.stop()

    def _poll_once(self) -> None:
        free = self._free_slots()
        with self._lock:
            if free == 0 or self._stop.is_set():
                return
            self._poll_ends = time.monotonic() + self._cfg.poll_wait_seconds
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._cfg.queue_url,
                MaxNumberOfMessages=min(sqs_edge.MAX_BATCH, free),
                WaitTimeSeconds=self._cfg.poll_wait_seconds,
                VisibilityTimeout=self._cfg.visibility_timeout_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
        except (ClientError, BotoCoreError) as exc:
            with self._lock:
                self._poll_ends = None
            problem = access_problem(exc)
            cause = {"cause": problem.line} if problem is not None else {}
            log.warning("receive_failed", error=str(exc), **cause)
            self._stop.wait(RECEIVE_ERROR_PAUSE_SECONDS)
            return
        messages = response.get("Messages", [])
        with self._lock:
            self._poll_ends = None
            stopped = self._stop.is_set()
            if not stopped:  # under the lock: the shutdown sees every message dispatched
                for message in messages:
                    self._dispatch(message)
        if stopped:  # received after the stop: straight back to the queue
            self._change_visibility(
                [(m["MessageId"], m["ReceiptHandle"], 0) for m in messages], "released"
            )
            if messages:
                log.info("received_after_stop_released", count=len(messages))
            return
        self._beat()

    def _end_polling(self, poller: threading.Thread) -> None:
        """Let the poller hand back what it received after the stop, waiting for a long poll about
        to end; abandon one with longer to go (see the module's docstring)."""
        with self._lock:
            ends = self._poll_ends
        left = 0.0 if ends is None else ends - time.monotonic()
        if left > POLL_END_WAIT_SECONDS:
            log.info("long_poll_abandoned", ends_in_s=round(left, 1))
            return
        poller.join(timeout=max(left, 0.0) + SHUTDOWN_MARGIN_SECONDS)

    def _free_slots(self) -> int:
        """Block until at least one slot is free (or stop); return how many are."""
        while not self._slots.acquire(timeout=1.0):
            self._beat()
            if self._stop.is_set():
                return 0
        self._slots.release()
        with self._lock:
            return max(self._cfg.concurrency - self._computing, 0)

    def _dispatch(self, message: MessageTypeDef) -> None:
        """Hand one message to a worker thread. Called with ``_lock`` held, for at most as many
        messages as :meth:`_free_slots` found free: only the poller takes slots, so this never
        blocks."""
        self._slots.acquire()
        self._computing += 1
        item = InFlight(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            attributes=dict(message.get("MessageAttributes", {})),
        )
        self._inflight[item.message_id] = item
        item.future = self._executor.submit(self._work, item, message.get("Body", ""))

    def _work(self, item: InFlight, body: str) -> Outcome:
        try:
            with bound_contextvars(message_id=item.message_id, receive_count=item.receive_count):
                outcome = self._handler(body)
        except Exception as exc:  # a bug: keep the message, the redrive policy takes over
            log.exception("handler_crashed")
            outcome = RetryLater(reason=f"unexpected {type(exc).__name__}: {exc}")
        with self._lock:
            self._computing -= 1
        self._slots.release()
        self._acks.put((item, outcome, body))
        return outcome

    # ------------------------------------------------------------------ acknowledgements

    def _ack_loop(self) -> None:
        while True:
            first = self._acks.get()
            if first is None:
                return
            batch = [first]
            # Lingering only pays while other uploads are being computed: their acks may join.
            with self._lock:
                linger = ACK_LINGER_SECONDS if self._computing else 0.0
            deadline = time.monotonic() + linger
            while len(batch) < sqs_edge.MAX_BATCH and (left := deadline - time.monotonic()) > 0:
                try:
                    nxt = self._acks.get(timeout=left)
                except queue.Empty:
                    break
                if nxt is None:
                    self._acks.put_nowait(nxt)
                    break
                batch.append(nxt)
            self._settle(batch)

    def _settle(self, batch: list[tuple[InFlight, Outcome, str]]) -> None:
        deletes: list[InFlight] = []
        visibility: list[tuple[str, str, int]] = []
        for item, outcome, body in batch:
            try:
                hide = self._settle_one(item, outcome, body)
            except Exception:  # a bug: keep the message, hidden for the usual backoff
                log.exception("settle_crashed", message_id=item.message_id)
                hide = int(retry_delay(item.receive_count))
            if hide is None:
                deletes.append(item)
            else:
                visibility.append((item.message_id, item.receipt_handle, hide))
        self._delete(deletes)
        self._change_visibility(visibility, "retry")
        self._finish(item for item, _, _ in batch)

    def _settle_one(self, item: InFlight, outcome: Outcome, body: str) -> int | None:
        """Do what ``outcome`` needs but the batched calls; None: delete, else hide this long."""
        if isinstance(outcome, DeadLetter):
            if self._dead_letter(item, outcome.body if outcome.body is not None else body, outcome):
                return None
            return NO_DLQ_HIDE_SECONDS if not self._cfg.dlq_url else DEAD_LETTER_FAILED_HIDE_SECONDS
        if isinstance(outcome, RetryLater):
            if outcome.error_type and item.receive_count >= self._cfg.max_receive_count:
                # The last receive before the redrive policy would move it without a word.
                last = DeadLetter(error_type=outcome.error_type, error_message=outcome.reason)
                return self._settle_one(item, last, body)
            delay = self._retry_seconds(item, outcome)
            log.info("message_retry_later", message_id=item.message_id, delay_s=delay)
            return delay
        if isinstance(outcome, Partial):
            return self._settle_partial(item, outcome)
        return None

    def _retry_seconds(self, item: InFlight, outcome: RetryLater) -> int:
        delay = outcome.delay if outcome.delay is not None else retry_delay(item.receive_count)
        return int(min(max(delay, 0), sqs_edge.MAX_VISIBILITY_SECONDS))

    def _settle_partial(self, item: InFlight, outcome: Partial) -> int | None:
        """Dead-letter the bad records alone; split the message when others must be retried."""
        rest = outcome.rest
        if not self._cfg.dlq_url:
            for dead in outcome.dead_letters:
                self._dead_letter(item, dead.body or "", dead)  # logs it, sends nothing
            if isinstance(rest, RetryLater):
                return self._retry_seconds(item, rest)
            return NO_DLQ_HIDE_SECONDS
        # Records to retry go first: if a later send fails, the kept original repeats only work
        # the result records absorb, rather than putting a bad record on the DLQ twice.
        if outcome.resends and not self._resend(item, outcome):
            return self._retry_seconds(item, rest) if isinstance(rest, RetryLater) else 0
        for dead in outcome.dead_letters:
            if not self._dead_letter(item, dead.body or "", dead):
                if isinstance(rest, RetryLater):
                    return self._retry_seconds(item, rest)
                return DEAD_LETTER_FAILED_HIDE_SECONDS
        log.info(
            "message_split" if outcome.resends else "message_partly_dead_lettered",
            message_id=item.message_id,
            dead_lettered=len(outcome.dead_letters),
            resent=len(outcome.resends),
            rest=rest.reason,
        )
        return None

    def _resend(self, item: InFlight, outcome: Partial) -> bool:
        """Send each record to retry back to the queue as a message of its own; all or False."""
        attributes = sqs_edge.kept_attributes(item.attributes)
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, resend in enumerate(outcome.resends):
            delay = min(self._retry_seconds(item, resend.outcome), sqs_edge.MAX_DELAY_SECONDS)
            entry: SendMessageBatchRequestEntryTypeDef = {
                "Id": str(index),
                "MessageBody": resend.body,
                "DelaySeconds": delay,
            }
            if attributes:
                entry["MessageAttributes"] = attributes
            entries.append(entry)
        failed = sqs_edge.batched(
            self._sqs.send_message_batch,
            self._cfg.queue_url,
            entries,
            lambda entry_id, entry: {**entry, "Id": entry_id},
        )
        if failed:
            log.warning(
                "resend_failed", message_id=item.message_id, error=failed[0][1], failed=len(failed)
            )
            return False
        return True

    def _dead_letter(self, item: InFlight, body: str, outcome: DeadLetter) -> bool:
        if not self._cfg.dlq_url:
            # Nowhere to put it: keep it on the queue, hidden as long as SQS allows, and say so.
            log.error(
                "message_unprocessable_no_dlq",
                error_type=outcome.error_type,
                error_message=outcome.error_message,
                hidden_for_s=NO_DLQ_HIDE_SECONDS,
            )
            return False
        try:
            sqs_edge.send_dead_letter(
                self._sqs,
                self._cfg.dlq_url,
                body,
                outcome.error_type,
                outcome.error_message,
                attributes=item.attributes,
            )
        except (ClientError, BotoCoreError) as exc:  # kept: retried, never lost
            log.warning("dead_letter_failed", error=str(exc))
            return False
        self._metrics.incr(Metric.DLQ_SENDS)
        log.warning(
            "message_dead_lettered",
            error_type=outcome.error_type,
            error_message=outcome.error_message,
        )
        return True

    def _delete(self, items: list[InFlight]) -> None:
        failed = sqs_edge.batched(
            self._sqs.delete_message_batch,
            self._cfg.queue_url,
            items,
            lambda entry_id, it: {"Id": entry_id, "ReceiptHandle": it.receipt_handle},
        )
        for item, why in failed:
            log.warning("delete_failed", message_id=item.message_id, error=why)

    def _change_visibility(self, items: list[tuple[str, str, int]], why: str) -> None:
        failed = sqs_edge.batched(
            self._sqs.change_message_visibility_batch,
            self._cfg.queue_url,
            items,
            lambda entry_id, it: {
                "Id": entry_id,
                "ReceiptHandle": it[1],
                "VisibilityTimeout": it[2],
            },
        )
        for (message_id, _, _), error in failed:
            log.warning("visibility_change_failed", why=why, message_id=message_id, error=error)

    def _finish(self, items: Iterable[InFlight]) -> None:
        with self._lock:
            for item in items:
                self._inflight.pop(item.message_id, None)

    # ------------------------------------------------------------------ heartbeat & health

    def _heartbeat_loop(self) -> None:
        # Runs on after a stop signal, through the grace period, until every in-flight message is
        # finished or handed back: a message whose visibility timeout ran out would be received
        # by another consumer while this one still works on it.
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
        interval = max(self._cfg.visibility_timeout_seconds / 3, 1.0)
        while not self._released.wait(interval):
            with self._beat_lock:
                with self._lock:
                    items = [
                        (it.message_id, it.receipt_handle, self._cfg.visibility_timeout_seconds)
                        for it in self._inflight.values()
                    ]
                if items:
                    self._change_visibility(items, "heartbeat")

    def _beat(self) -> None:
        if self._cfg.health_file:
            try:
                Path(self._cfg.health_file).touch()
            except OSError as exc:
                log.warning("health_file_unwritable", path=self._cfg.health_file, error=str(exc))

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> int:
        stop_at = self._stop_at or time.monotonic()
        deadline = stop_at + self._cfg.grace_seconds - SHUTDOWN_MARGIN_SECONDS
        with self._lock:
            pending = [it.future for it in self._inflight.values() if it.future is not None]
        if pending:
            wait(pending, timeout=max(deadline - time.monotonic(), 0))
        self._executor.shutdown(wait=False, cancel_futures=True)
        # Let the acker settle what finished in time.
        settle_until = time.monotonic() + min(1.0, max(deadline - time.monotonic(), 0.1))
        while time.monotonic() < settle_until and not self._acks.empty():
            time.sleep(0.02)
        # The heartbeat runs on for the messages still being settled, not for those handed back.
        beat_locked = self._beat_lock.acquire(timeout=SHUTDOWN_MARGIN_SECONDS)
        try:
            with self._lock:
                left = [
                    it
                    for it in self._inflight.values()
                    if it.future is None or not it.future.done() or it.future.cancelled()
                ]
                for it in left:
                    del self._inflight[it.message_id]
        finally:
            if beat_locked:
                self._beat_lock.release()
        self._change_visibility([(it.message_id, it.receipt_handle, 0) for it in left], "released")
        if left:
            log.warning("messages_released", count=len(left))
        return len(left)


def _flush_logs() -> None:
    # Exiting anyway: a stream that cannot be flushed must not stop the exit.
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
