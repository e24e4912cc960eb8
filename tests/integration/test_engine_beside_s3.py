"""The local face engine beside another S3: `worker embedded --services rekognition` reads the
photos from LocalStack's S3 (the one AWS_ENDPOINT_URL points at), and `worker run` against
LocalStack gets real results — a match, a group photo, a no-face — not an acknowledgement of an
image the engine could not see.

Before this mode the engine read S3Object images from its own in-memory moto S3, whatever the
environment said: every upload held in another S3 was "unreadable" to it.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import REGION, Stack, WorkerProcess

pytestmark = pytest.mark.slow

pytest.importorskip("dlib", reason="the local face engine needs the 'local' extra (dlib-bin)")
samples = pytest.importorskip("worker.local.samples")

START_TIMEOUT = 60


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@pytest.fixture(scope="module")
def engine(localstack_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`worker embedded --services rekognition` with LocalStack as the environment's S3."""
    tmp_path = tmp_path_factory.mktemp("engine")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
    env.update(
        AWS_ENDPOINT_URL=localstack_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        LOG_FORMAT="json",
    )
    stderr = (tmp_path / "engine.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "embedded", "--services", "rekognition", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        line = _first_line(proc, START_TIMEOUT)
        words = shlex.split(line)
        assert words[:1] == ["export"], (line, (tmp_path / "engine.log").read_text())
        name, _, endpoint = words[1].partition("=")
        assert name == "AWS_ENDPOINT_URL_REKOGNITION"
        yield endpoint
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            stderr.close()
    assert code == 0, (tmp_path / "engine.log").read_text()


@pytest.mark.parametrize("strategy", ["compare", "collection"])
def test_uploads_in_localstack_get_their_real_results(
    localstack_endpoint: str, engine: str, tmp_path: Path, strategy: str
) -> None:
    stack = Stack.create(localstack_endpoint)
    sample_set = samples.load_samples()
    for reference in sample_set.references:
        stack.put(reference.key, reference.body)
    wanted = {
        s.key: s
        for s in sample_set.uploads
        if s.key.endswith(("astronaut-crop.jpg", "both-side-by-side.jpg", "space-shuttle.jpg"))
    }
    worker = WorkerProcess(
        stack.env(engine, HEALTH_FILE=str(tmp_path / "health"), STRATEGY=strategy),
        tmp_path / "worker.log",
    )
    try:
        worker.wait_for_log("worker_started", timeout=30)
        started = time.monotonic()
        for sample in wanted.values():
            stack.put(sample.key, sample.body)
        published = {p.record["key"]: p.record for p in stack.published(len(wanted), timeout=90)}
        seconds = time.monotonic() - started
        stack.no_more_published(wait=2)
        for key, sample in wanted.items():
            record = published[key]
            assert record["status"] == sample.expected_status, record
            assert sorted(m["label"] for m in record["matches"]) == sorted(
                sample.expected_labels
            ), record
            assert stack.record(key) == record
        stack.wait_drained()
        assert stack.queue_depth(stack.dlq_url) == 0, "nothing was dead-lettered"
        print(f"engine beside LocalStack, {strategy}: {len(wanted)} uploads in {seconds:.1f} s")
        assert worker.terminate() == 0
    finally:
        worker.kill()


def test_other_services_are_refused_with_the_reason(engine: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=engine,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
