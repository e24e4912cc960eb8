"""`worker run` starting and stopping (issue 12): the readiness check before the first poll, log
lines for a terminal or a pipe, an idle worker stopped by SIGINT or SIGTERM within a second or two,
and a message that arrives meanwhile received by the next worker."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.harness import Stack, WorkerProcess, cli
from tests.support.rekognition import FakeRekognition

pytestmark = pytest.mark.slow

# The stop must not wait for the open long poll of POLL_WAIT_SECONDS=20.
IDLE = {"POLL_WAIT_SECONDS": "20", "VISIBILITY_TIMEOUT_SECONDS": "5"}
STOP_WITHIN_SECONDS = 3.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def environment(
    stack: Stack, fake: FakeRekognition, tmp_path: Path, **settings: str
) -> dict[str, str]:
    """The stack's settings with LOG_FORMAT unset: the worker chooses by its stderr."""
    env = stack.env(fake.endpoint, HEALTH_FILE=str(tmp_path / "heartbeat"), **settings)
    env.pop("LOG_FORMAT")
    return env


def test_run_names_every_missing_resource_and_exits_2(
    stack: Stack, fake_rekognition: FakeRekognition, tmp_path: Path
) -> None:
    env = environment(
        stack,
        fake_rekognition,
        tmp_path,
        QUEUE_URL=f"{stack.queue_url}-typo",
        DLQ_URL=f"{stack.dlq_url}-typo",
        BUCKET_NAME=f"{stack.bucket}-typo",
        SNS_TOPIC_ARN=f"{stack.topic_arn}-typo",
    )
    proc = cli("run", env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"worker: configuration: QUEUE_URL: queue {stack.queue_url}-typo does not exist",
        f"worker: configuration: DLQ_URL: queue {stack.dlq_url}-typo does not exist",
        f"worker: configuration: BUCKET_NAME: bucket {stack.bucket}-typo does not exist",
        f"worker: configuration: SNS_TOPIC_ARN: topic {stack.topic_arn}-typo does not exist",
    ]
    assert not (tmp_path / "heartbeat").exists(), "it never polled"


def test_without_dlq_url_the_redrive_target_is_found_at_start(
    stack: Stack, fake_rekognition: FakeRekognition, tmp_path: Path
) -> None:
    env = environment(stack, fake_rekognition, tmp_path, DLQ_URL="")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        started = worker.wait_for_log("worker_started")  # JSON lines: stderr is a file
        assert started["dlq_url"] == stack.dlq_url
    finally:
        worker.kill()


def read_until(fd: int, needle: str, timeout: float) -> str:
    """What the process wrote to its terminal until ``needle`` (or EOF, or the timeout)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            seen += chunk
    return ANSI.sub("", seen.decode(errors="replace"))


def test_on_a_terminal_logs_are_console_lines_and_sigint_stops_an_idle_worker_at_once(
    stack: Stack, fake_rekognition: FakeRekognition, tmp_path: Path
) -> None:
    parent, child = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "run"],
        env=environment(stack, fake_rekognition, tmp_path, **IDLE),
        stdout=subprocess.DEVNULL,
        stderr=child,
    )
    os.close(child)
    try:
        text = read_until(parent, "worker_started", timeout=30)
        (line,) = [line for line in text.splitlines() if "worker_started" in line]
        assert not line.lstrip().startswith("{"), line
        assert re.search(r"\[info\s*\]\s+worker_started\b", line), line
        time.sleep(1)  # the first long poll is open
        stopped = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - stopped < STOP_WITHIN_SECONDS
        assert "worker_stopped" in read_until(parent, "worker_stopped", timeout=2)
    finally:
        proc.kill()
        os.close(parent)


def test_piped_logs_are_json_and_sigterm_stops_an_idle_worker_without_losing_what_comes(
    stack: Stack, fake_rekognition: FakeRekognition, tmp_path: Path
) -> None:
    idle = WorkerProcess(
        environment(stack, fake_rekognition, tmp_path, **IDLE), tmp_path / "idle.log"
    )
    next_worker = None
    try:
        idle.wait_for_log("worker_started")  # parsed as JSON, else it would not be found
        time.sleep(1)  # the first long poll is open
        stopped = time.monotonic()
        assert idle.terminate(timeout=10) == 0
        assert time.monotonic() - stopped < STOP_WITHIN_SECONDS
        assert idle.events("worker_stopped")[0]["released"] == 0
        # The idle worker's long poll may still be open at SQS: what it takes reappears after
        # its 5 s visibility timeout, for the next worker.
        stack.put("uploads/during-shutdown.png", b"not an image")
        next_worker = WorkerProcess(
            environment(stack, fake_rekognition, tmp_path), tmp_path / "next.log"
        )
        (result,) = stack.published(1, timeout=30)
        assert result.record["key"] == "uploads/during-shutdown.png"
    finally:
        idle.kill()
        if next_worker is not None:
            next_worker.kill()
