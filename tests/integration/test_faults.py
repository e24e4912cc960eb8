"""Faults: a replica killed mid-batch, a throttling storm, S3 and SNS unreachable, duplicate
events, a stuck poll loop. Each upload must end with exactly one result and one notification.

The session's fake Rekognition brings the latency, random throttling and a gate that holds calls
(tests/support/service.py); S3/SNS outages go through a small TCP proxy on loopback that can
refuse service for a while.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Stack, WorkerProcess
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, CAROL, face_png

pytestmark = pytest.mark.slow

StartWorker = Callable[..., WorkerProcess]
PEOPLE = (ALICE, BOB, CAROL)


def seed_references(stack: Stack) -> None:
    for name, colour in zip(("alice", "bob", "carol"), PEOPLE, strict=True):
        stack.put(f"references/{name}.png", face_png(colour))


def upload(stack: Stack, index: int) -> str:
    key = f"uploads/f{index:03d}.png"
    stack.put(key, face_png(PEOPLE[index % 3]))
    return key


def one_each(stack: Stack, keys: list[str], timeout: float = 40.0) -> None:
    """Every key has exactly one notification, and no other comes later."""
    published = stack.published(len(keys), timeout=timeout)
    stack.no_more_published(wait=2.0)
    counts = Counter(p.record["key"] for p in published)
    assert counts == Counter(keys), f"notifications per key: {counts}"
    for key in keys:
        assert stack.record(key)["key"] == key


def emf_totals(worker: WorkerProcess) -> Counter[str]:
    totals: Counter[str] = Counter()
    for line in worker.events("emf_metrics"):
        for name, value in line.items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[name] += value
    return totals


# ---------------------------------------------------------------------- kill -9


def test_kill_9_mid_batch_leaves_exactly_one_result_per_upload(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    seed_references(stack)
    fake_rekognition.latency = 0.2
    settings = {"CONCURRENCY": "4", "VISIBILITY_TIMEOUT_SECONDS": "6"}
    first = start_worker(**settings)
    keys = [upload(stack, i) for i in range(12)]
    deadline = time.monotonic() + 30
    while len(first.events("result_published")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Hold Rekognition so that the uploads in flight are all inside a call (none between its
    # record write and its publish), then kill the replica without warning.
    fake_rekognition.hold()
    time.sleep(0.5)
    in_flight = fake_rekognition.held
    done_before = len(first.events("result_published"))
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    fake_rekognition.release()
    assert in_flight > 0, "nothing was in flight when the replica was killed"
    assert done_before < len(keys)
    start_worker(**settings)
    one_each(stack, keys)
    stack.wait_drained()


# ---------------------------------------------------------------------- throttling


def test_throttling_storm_loses_nothing_and_shows_in_emf(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    seed_references(stack)
    fake_rekognition.latency = 0.05
    worker = start_worker(CONCURRENCY="4")
    fake_rekognition.set_rates(throttle_rate=0.5)
    keys = []
    for i in range(10):  # uploads keep coming during the storm (about 6 s)
        keys.append(upload(stack, i))
        time.sleep(0.6)
    fake_rekognition.set_rates(throttle_rate=0.0)
    one_each(stack, keys)
    assert worker.terminate() == 0
    totals = emf_totals(worker)
    throttled = fake_rekognition.calls["Throttled"]
    assert throttled > 0
    assert totals["RekognitionThrottles"] == throttled  # every throttle seen and counted
    assert totals["RekognitionRetries"] >= throttled - len(worker.events("upload_retry_later"))
    assert totals["Uploads"] == len(keys)


# ---------------------------------------------------------------------- S3 / SNS outage


class PausableProxy:
    """A TCP proxy on loopback; while paused it cuts open connections and closes new ones at
    once, as an unreachable endpoint does (connection reset)."""

    def __init__(
        self, target: tuple[str, int], on_connect: Callable[[], None] | None = None
    ) -> None:
        self._target = target
        self._on_connect = on_connect
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._paused = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.refused = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def pause(self) -> None:
        self._paused.set()
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            _cut(conn)

    def resume(self) -> None:
        self._paused.clear()

    def close(self) -> None:
        self._closed.set()
        self.pause()
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self._on_connect:
                self._on_connect()
            if self._paused.is_set():
                self.refused += 1
                _cut(conn)
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                _cut(conn)
                continue
            with self._lock:
                self._open.update((conn, upstream))
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _cut(src)
            _cut(dst)
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[PausableProxy]:
    host, port = moto_endpoint.rsplit("/", 1)[-1].split(":")
    p = PausableProxy((host, int(port)))
    yield p
    p.close()


def test_s3_and_sns_unreachable_for_a_few_seconds(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition, proxy: PausableProxy
) -> None:
    seed_references(stack)
    fake_rekognition.latency = 0.1
    worker = start_worker(
        CONCURRENCY="4",
        VISIBILITY_TIMEOUT_SECONDS="6",
        AWS_ENDPOINT_URL_S3=proxy.endpoint,
        AWS_ENDPOINT_URL_SNS=proxy.endpoint,
    )
    keys = [upload(stack, i) for i in range(4)]
    time.sleep(0.3)
    proxy.pause()
    keys += [upload(stack, i) for i in range(4, 8)]
    time.sleep(3.0)
    proxy.resume()
    keys += [upload(stack, i) for i in range(8, 10)]
    one_each(stack, keys, timeout=45)
    assert proxy.refused > 0, "the outage never touched the worker"
    stack.wait_drained()
    assert worker.proc.poll() is None


def test_s3_unreachable_right_after_the_publish_sends_no_second_notification(
    stack: Stack, start_worker: StartWorker, moto_endpoint: str
) -> None:
    """The window the pipeline's docstring names: published, not yet marked ``sent``. An S3
    outage there must not leave the record ``pending`` (a later delivery would publish again)."""
    host, port = moto_endpoint.rsplit("/", 1)[-1].split(":")
    s3_proxy = PausableProxy((host, int(port)))
    outage = threading.Event()

    def on_sns_call() -> None:  # the worker's publish: take S3 away for 3 s
        if not outage.is_set():
            outage.set()
            s3_proxy.pause()
            threading.Timer(3.0, s3_proxy.resume).start()

    sns_proxy = PausableProxy((host, int(port)), on_connect=on_sns_call)
    try:
        seed_references(stack)
        worker = start_worker(
            AWS_ENDPOINT_URL_S3=s3_proxy.endpoint, AWS_ENDPOINT_URL_SNS=sns_proxy.endpoint
        )
        key = upload(stack, 0)
        one_each(stack, [key], timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            head = stack.s3.head_object(Bucket=stack.bucket, Key=f"results/{key}.json")
            if head["Metadata"].get("notified") == "sent":
                break
            time.sleep(0.5)
        assert outage.is_set() and s3_proxy.refused > 0
        assert head["Metadata"].get("notified") == "sent", (
            "the record stayed pending: a later delivery publishes it again when the lease ends"
        )
        stack.wait_drained()
        assert worker.proc.poll() is None
    finally:
        s3_proxy.close()
        sns_proxy.close()


# ---------------------------------------------------------------------- duplicate events


def test_duplicate_event_and_multipart_double_event_give_one_result(
    stack: Stack, start_worker: StartWorker
) -> None:
    seed_references(stack)
    stack.put("uploads/twice.png", face_png(ALICE))
    multipart = stack.s3.create_multipart_upload(Bucket=stack.bucket, Key="uploads/multi.png")
    part = stack.s3.upload_part(
        Bucket=stack.bucket,
        Key="uploads/multi.png",
        UploadId=multipart["UploadId"],
        PartNumber=1,
        Body=face_png(BOB),
    )
    stack.s3.complete_multipart_upload(
        Bucket=stack.bucket,
        Key="uploads/multi.png",
        UploadId=multipart["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    # Deliver the single upload's event a second time, as SQS's at-least-once delivery may.
    bodies: list[str] = []
    deadline = time.monotonic() + 10
    while not any("twice.png" in b for b in bodies) and time.monotonic() < deadline:
        response = stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            bodies.append(message["Body"])
            stack.sqs.change_message_visibility(
                QueueUrl=stack.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
    twice = next(b for b in bodies if "twice.png" in b)
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=twice)
    worker = start_worker()
    one_each(stack, ["uploads/twice.png", "uploads/multi.png"])
    stack.wait_drained()
    assert len(worker.events("upload_duplicate")) >= 2  # the repeated event and moto's second


# ---------------------------------------------------------------------- health


def health(env: dict[str, str], max_age: float) -> int:
    return subprocess.run(
        [sys.executable, "-m", "worker", "health", "--max-age", str(max_age)],
        env=env,
        capture_output=True,
        check=False,
        timeout=30,
    ).returncode


def healthy_worker(
    start_worker: StartWorker, tmp_path: Path
) -> tuple[WorkerProcess, dict[str, str]]:
    """A running worker, and the environment in which `worker health` checks it."""
    heartbeat = tmp_path / "heartbeat"
    worker = start_worker(HEALTH_FILE=str(heartbeat))
    env = {**os.environ, "HEALTH_FILE": str(heartbeat)}
    assert health(env, max_age=5) == 0
    return worker, env


def test_health_fails_for_a_stuck_poll_loop_and_passes_for_a_running_worker(
    stack: Stack, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, env = healthy_worker(start_worker, tmp_path)
    worker.proc.send_signal(signal.SIGSTOP)  # the poll loop stops turning
    try:
        time.sleep(3.5)
        assert health(env, max_age=3) == 1
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    time.sleep(1.5)
    assert health(env, max_age=3) == 0
    stale = tmp_path / "stale"
    stale.touch()
    os.utime(stale, (time.time() - 600, time.time() - 600))
    assert health({**os.environ, "HEALTH_FILE": str(stale)}, max_age=90) == 1
    assert health({**os.environ, "HEALTH_FILE": str(tmp_path / "missing")}, max_age=90) == 1
    assert json.dumps(worker.events("worker_started")[0])  # the worker was the real daemon


def test_health_fails_when_receives_keep_failing_though_the_loop_turns(
    stack: Stack, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, env = healthy_worker(start_worker, tmp_path)
    stack.sqs.delete_queue(QueueUrl=stack.queue_url)  # every receive fails from now on
    time.sleep(4.5)
    assert worker.events("receive_failed"), "the loop goes on, receiving in vain"
    assert worker.proc.poll() is None
    assert health(env, max_age=3) == 1
