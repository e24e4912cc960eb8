"""The consumer loop: long-poll, fan out to worker threads, heartbeat, batched acks, shutdown.

Threads: the main thread polls SQS and never processes; ``CONCURRENCY`` worker threads run the
pipeline and never touch the queue; a heartbeat thread keeps in-flight messages invisible; an
acker thread turns outcomes into batched SQS calls. SIGTERM/SIGINT: stop receiving, let in-flight
work finish until the grace period ends, hand back what is left (visibility 0), exit 0. A second
signal exits at once.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from structlog.contextvars import bound_contextvars

from worker import dlq
from worker.errors import WorkerError
from worker.logs import get_logger
from worker.metrics import Metrics
from worker.outcomes import DeadLetter, Outcome, RetryLater, retry_delay

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from worker.emf import EmfExporter

log = get_logger(__name__)

# SQS limits.
SQS_MAX_BATCH = 10
SQS_MAX_WAIT_SECONDS = 20
SQS_MAX_VISIBILITY_SECONDS = 12 * 60 * 60
# An unprocessable message with no DLQ to go to stays on the queue, hidden this long (within the
# 12 h a message may be kept invisible in total).
NO_DLQ_HIDE_SECONDS = 11 * 60 * 60
# Pause after a failed receive before polling again.
RECEIVE_ERROR_PAUSE_SECONDS = 2.0
# Time kept at the end of the grace period for releasing messages and flushing acks.
SHUTDOWN_MARGIN_SECONDS = 2.0
# How long the acker waits to fill a batch before flushing.
ACK_LINGER_SECONDS = 0.05


@dataclass
class InFlight:
    message_id: str
    receipt_handle: str
    receive_count: int
    future: Future[Outcome] | None = None
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RunnerConfig:
    queue_url: str
    dlq_url: str | None
    concurrency: int
    poll_wait_seconds: int = SQS_MAX_WAIT_SECONDS
    visibility_timeout_seconds: int = 60
    grace_seconds: float = 25.0
    health_file: str | None = None


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
        self._stop_at: float | None = None
        self._lock = threading.Lock()
        self._inflight: dict[str, InFlight] = {}
        self._slots = threading.Semaphore(config.concurrency)
        self._acks: queue.Queue[tuple[InFlight, Outcome, str] | None] = queue.Queue()
        self._executor = ThreadPoolExecutor(config.concurrency, thread_name_prefix="upload")

    # ------------------------------------------------------------------ lifecycle

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: Any) -> None:
            if self._stop.is_set():
                log.warning("second_signal_exiting_now", signal=signal.Signals(signum).name)
                raise SystemExit(1)
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
        log.info("worker_started", queue_url=self._cfg.queue_url, concurrency=self._cfg.concurrency)
        try:
            while not self._stop.is_set():
                self._beat()
                self._poll_once()
        finally:
            released = self._shutdown()
            self._stop.set()
            self._acks.put_nowait(None)  # wakes the acker to exit
            helpers[1].join(timeout=SHUTDOWN_MARGIN_SECONDS)
            if self._emf:
                self._emf.close()  # the last counters, DLQ sends of the final acks included
        log.info("worker_stopped", released=released)
        return released

    # ------------------------------------------------------------------ polling

    def _poll_once(self) -> None:
        free = self._free_slots()
        if free == 0:
            return
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._cfg.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_BATCH, free),
                WaitTimeSeconds=self._cfg.poll_wait_seconds,
                VisibilityTimeout=self._cfg.visibility_timeout_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("receive_failed", error=str(exc))
            self._stop.wait(RECEIVE_ERROR_PAUSE_SECONDS)
            return
        messages = response.get("Messages", [])
        if self._stop.is_set():
            self._change_visibility(
                [(m["MessageId"], m["ReceiptHandle"], 0) for m in messages], "released"
            )
            return
        for message in messages:
            self._dispatch(message)

    def _free_slots(self) -> int:
        """Block until at least one slot is free (or stop); return how many are."""
        while not self._slots.acquire(timeout=1.0):
            self._beat()
            if self._stop.is_set():
                return 0
        self._slots.release()
        with self._lock:
            return max(self._cfg.concurrency - len(self._inflight), 0)

    def _dispatch(self, message: MessageTypeDef) -> None:
        self._slots.acquire()
        item = InFlight(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        with self._lock:
            self._inflight[item.message_id] = item
        body = message.get("Body", "")
        item.future = self._executor.submit(self._work, item, body)

    def _work(self, item: InFlight, body: str) -> Outcome:
        try:
            with bound_contextvars(message_id=item.message_id, receive_count=item.receive_count):
                outcome = self._handler(body)
        except Exception as exc:  # a bug: keep the message, the redrive policy takes over
            log.exception("handler_crashed")
            outcome = RetryLater(reason=f"unexpected {type(exc).__name__}: {exc}")
        self._acks.put((item, outcome, body))
        return outcome

    # ------------------------------------------------------------------ acknowledgements

    def _ack_loop(self) -> None:
        while True:
            first = self._acks.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + ACK_LINGER_SECONDS
            while len(batch) < SQS_MAX_BATCH and (left := deadline - time.monotonic()) > 0:
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
            if isinstance(outcome, DeadLetter):
                if self._dead_letter(body, outcome):
                    deletes.append(item)
                else:
                    hide = NO_DLQ_HIDE_SECONDS if not self._cfg.dlq_url else 60
                    visibility.append((item.message_id, item.receipt_handle, hide))
            elif isinstance(outcome, RetryLater):
                delay = (
                    outcome.delay if outcome.delay is not None else retry_delay(item.receive_count)
                )
                delay = int(min(max(delay, 0), SQS_MAX_VISIBILITY_SECONDS))
                visibility.append((item.message_id, item.receipt_handle, delay))
                log.info("message_retry_later", message_id=item.message_id, delay_s=delay)
            else:
                deletes.append(item)
        self._delete(deletes)
        self._change_visibility(visibility, "retry")
        self._finish(item for item, _, _ in batch)

    def _dead_letter(self, body: str, outcome: DeadLetter) -> bool:
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
            dlq.send_to_dlq(
                self._sqs, self._cfg.dlq_url, body, outcome.error_type, outcome.error_message
            )
        except (WorkerError, ClientError, BotoCoreError) as exc:  # kept: retried, never lost
            log.warning("dead_letter_failed", error=str(exc))
            return False
        self._metrics.incr("DLQSends")
        log.warning(
            "message_dead_lettered",
            error_type=outcome.error_type,
            error_message=outcome.error_message,
        )
        return True

    def _delete(self, items: list[InFlight]) -> None:
        for chunk in _chunks(items, SQS_MAX_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": it.receipt_handle} for i, it in enumerate(chunk)
            ]
            try:
                response = self._sqs.delete_message_batch(
                    QueueUrl=self._cfg.queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            except (ClientError, BotoCoreError) as exc:
                log.warning("delete_failed", error=str(exc), count=len(chunk))
                continue
            for failed in response.get("Failed", []):
                log.warning(
                    "delete_entry_failed",
                    message_id=chunk[int(failed["Id"])].message_id,
                    code=failed.get("Code"),
                    error=failed.get("Message"),
                )

    def _change_visibility(self, items: list[tuple[str, str, int]], why: str) -> None:
        for chunk in _chunks(items, SQS_MAX_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": timeout}
                for i, (_, handle, timeout) in enumerate(chunk)
            ]
            try:
                response = self._sqs.change_message_visibility_batch(
                    QueueUrl=self._cfg.queue_url,
                    Entries=entries,  # type: ignore[arg-type]
                )
            except (ClientError, BotoCoreError) as exc:
                log.warning("visibility_change_failed", why=why, error=str(exc), count=len(chunk))
                continue
            for failed in response.get("Failed", []):
                log.warning(
                    "visibility_entry_failed",
                    why=why,
                    message_id=chunk[int(failed["Id"])][0],
                    code=failed.get("Code"),
                )

    def _finish(self, items: Iterable[InFlight]) -> None:
        with self._lock:
            for item in items:
                if self._inflight.pop(item.message_id, None) is not None:
                    self._slots.release()

    # ------------------------------------------------------------------ heartbeat & health

    def _heartbeat_loop(self) -> None:
        interval = max(self._cfg.visibility_timeout_seconds / 3, 1.0)
        while not self._stop.wait(interval):
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
        with self._lock:
            left = [
                it
                for it in self._inflight.values()
                if it.future is None or not it.future.done() or it.future.cancelled()
            ]
        self._change_visibility([(it.message_id, it.receipt_handle, 0) for it in left], "released")
        if left:
            log.warning("messages_released", count=len(left))
        return len(left)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
