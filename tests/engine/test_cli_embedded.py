"""`worker embedded` in a subprocess: export lines first, S3 and Rekognition served on them, exit 0
on SIGTERM."""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from tests.engine.conftest import blank_png

pytestmark = pytest.mark.slow

EXPORTS = 5
START_TIMEOUT = 60
STOP_TIMEOUT = 20


def read_exports(process: subprocess.Popen[str]) -> list[str]:
    """The first EXPORTS lines of stdout, read in a thread so that a hang fails the test."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    got: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while len(got) < EXPORTS and time.monotonic() < deadline:
        try:
            got.append(lines.get(timeout=0.5))
        except queue.Empty:
            if process.poll() is not None:
                break
    return got


def test_embedded_serves_on_the_printed_lines_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["LOG_FORMAT"] = "console"
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "embedded", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        lines = read_exports(process)
        assert len(lines) == EXPORTS, (lines, process.poll())
        exported = {}
        for line in lines:
            words = shlex.split(line)
            assert words[0] == "export" and len(words) == 2, line
            name, _, value = words[1].partition("=")
            exported[name] = value
        assert set(exported) == {
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        }
        session = boto3.session.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=None,
            region_name=exported["AWS_REGION"],
        )
        url = exported["AWS_ENDPOINT_URL"]
        s3 = session.client("s3", endpoint_url=url)
        rekognition = session.client("rekognition", endpoint_url=url)
        s3.create_bucket(Bucket="cli-embedded")
        s3.put_object(Bucket="cli-embedded", Key="blank.png", Body=blank_png())
        image = {"S3Object": {"Bucket": "cli-embedded", "Name": "blank.png"}}
        assert rekognition.detect_faces(Image=image)["FaceDetails"] == []
        assert rekognition.create_collection(CollectionId="cli")["StatusCode"] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, stderr
