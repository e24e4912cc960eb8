"""`worker upload --wait`, `worker results` (table, --json, --since, --limit, --watch),
`worker results show` (record, e-mail, --annotate) and `worker status`, in subprocesses against
`worker embedded` with a real `worker run` (the local face engine) processing the uploads."""

from __future__ import annotations

import io
import json
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from PIL import Image

from tests.integration.cli_stack import EmbeddedStack, one_line_error, point_here, run_main
from tests.record_schema import validate_record
from worker.local.samples import load_samples
from worker.render import email_text, subject
from worker.results import ResultRecord

pytestmark = pytest.mark.slow

BUCKET = "cli-results"
WAIT_TIMEOUT = "60"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    workdir = tmp_path_factory.mktemp("cli-results")
    stack = EmbeddedStack(workdir, BUCKET)
    worker = None
    try:
        s3 = _s3(stack)
        for sample in load_samples().references:  # (`references add` has its own tests)
            s3.put_object(Bucket=BUCKET, Key=sample.key, Body=sample.body)  # type: ignore[attr-defined]
        worker = stack.start("run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield stack
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        stack.stop()


@pytest.fixture(scope="module")
def uploaded(stack: EmbeddedStack) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Every sample upload, through `worker upload --wait`; and the status each should get."""
    files = []
    expected = {}
    for sample in load_samples().uploads:
        path = stack.workdir / "photos" / Path(sample.key).name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(sample.body)
        files.append(str(path))
        expected[sample.key] = str(sample.expected_status)
    proc = stack.worker("upload", *files, "--wait", "--timeout", WAIT_TIMEOUT)
    return proc, expected


def _s3(stack: EmbeddedStack) -> object:
    return boto3.client(
        "s3",
        endpoint_url=stack.env["AWS_ENDPOINT_URL"],
        region_name=stack.env["AWS_REGION"],
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=None,
    )


def _stored_record(stack: EmbeddedStack, key: str) -> ResultRecord:
    body = _s3(stack).get_object(Bucket=BUCKET, Key=f"results/{key}.json")["Body"].read()  # type: ignore[attr-defined]
    return ResultRecord.from_json(validate_record(json.loads(body)))


def test_upload_wait_prints_each_result_as_it_is_written(
    uploaded: tuple[subprocess.CompletedProcess[str], dict[str, str]],
) -> None:
    proc, expected = uploaded
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line.startswith("uploaded ")] == [
        f"uploaded {line.split()[1]} to s3://{BUCKET}/{key}"
        for line, key in zip(lines, expected, strict=False)
    ]
    results = [line.split() for line in lines if not line.startswith("uploaded ")]
    assert {cells[2]: cells[1] for cells in results} == expected


def test_results_lists_the_newest_first_with_who_and_the_subject(
    stack: EmbeddedStack, uploaded: object
) -> None:
    proc = stack.worker("results")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["TIME", "STATUS", "KEY", "MATCHES", "SUBJECT"]
    _, expected = uploaded  # type: ignore[misc]
    assert len(rows) == len(expected)
    times = [row.split()[0] for row in rows]
    assert times == sorted(times, reverse=True)
    both = next(row for row in rows if "uploads/both-side-by-side.jpg" in row)
    assert re.search(r"eileen_collins \(\d+\.\d%\), grace_hopper \(\d+\.\d%\)", both)
    record = _stored_record(stack, "uploads/both-side-by-side.jpg")
    assert both.endswith(subject(record))
    stranger = next(row for row in rows if "uploads/stranger.jpg" in row)
    assert "no_match" in stranger and "1 face, nobody known" in stranger


@pytest.fixture
def here(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> EmbeddedStack:
    """This process pointed at the stack: `worker` runs in-process (no interpreter start-up)."""
    point_here(stack, monkeypatch)
    return stack


def test_results_json_is_one_record_per_line(
    here: EmbeddedStack, uploaded: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "results", "--json", "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    for line in lines:
        validate_record(json.loads(line))


def test_results_since_a_time_after_the_last_says_there_are_none(
    here: EmbeddedStack, uploaded: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "results", "--since", "2999-01-01T00:00:00Z")
    assert code == 0
    assert out == ""
    assert err.startswith(f"worker results: no results under s3://{BUCKET}/results/")


def test_results_rejects_a_bad_since_with_usage(
    here: EmbeddedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, "results", "--since", "yesterday")
    assert code == 2
    assert "neither a duration" in err


def test_show_prints_the_record_and_the_exact_email(stack: EmbeddedStack, uploaded: object) -> None:
    key = "uploads/both-side-by-side.jpg"
    proc = stack.worker("results", "show", key)
    assert proc.returncode == 0, proc.stderr
    record = _stored_record(stack, key)
    printed, _, rest = proc.stdout.partition("\n\n")
    assert ResultRecord.from_json(validate_record(json.loads(printed))) == record
    assert rest == f"E-mail subject: {subject(record)}\nE-mail text:\n{email_text(record)}\n"
    # The record's own key names the same upload.
    assert stack.worker("results", "show", f"results/{key}.json").stdout == proc.stdout


def test_show_annotate_draws_the_matched_faces_on_the_upload(
    stack: EmbeddedStack, uploaded: object, tmp_path: Path
) -> None:
    out = tmp_path / "both.jpg"
    key = "uploads/both-side-by-side.jpg"
    proc = stack.worker("results", "show", key, "--annotate", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(f"Picture: {out} (2 matched faces drawn)")
    upload = _s3(stack).get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[attr-defined]
    with Image.open(io.BytesIO(upload)) as original, Image.open(out) as drawn:
        assert drawn.format == "JPEG"
        assert drawn.size == original.size
        record = _stored_record(stack, key)
        face = record.matches[0].face  # the box's left edge, halfway down, is the first colour
        x = round(face.left * drawn.width) + 1
        y = round((face.top + face.height / 2) * drawn.height)
        red, green, blue = drawn.convert("RGB").getpixel((x, y))  # type: ignore[misc]
        assert red > 200 and green < 120 and blue < 120


def test_show_a_key_without_result_is_one_line_exit_1(stack: EmbeddedStack) -> None:
    line = one_line_error(stack.worker("results", "show", "uploads/never-uploaded.jpg"), 1)
    assert "no result for 'uploads/never-uploaded.jpg'" in line


def test_show_annotate_of_a_file_that_is_not_an_image_is_one_line_exit_1(
    here: EmbeddedStack, uploaded: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "text.jpg"
    code, stdout, err = run_main(
        capsys, "results", "show", "uploads/not-an-image.jpg", "--annotate", str(out)
    )
    assert code == 1 and len(err.splitlines()) == 1 and "cannot draw on" in err
    assert stdout == ""
    assert not out.exists()


def test_watch_prints_new_results_and_ctrl_c_exits_0_quietly(
    stack: EmbeddedStack, uploaded: object
) -> None:
    watch = stack.start(
        "results",
        "--watch",
        "--interval",
        "0.3",
        "--since",
        "1s",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert watch.stdout is not None
    stdout = watch.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        assert lines.get(timeout=30).split()[:2] == ["TIME", "STATUS"]
        photo = stack.workdir / "photos" / "astronaut-crop.jpg"
        sent = stack.worker("upload", str(photo), "--key", "watched/again.jpg")
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 30
        seen = ""
        while "uploads/watched/again.jpg" not in seen and time.monotonic() < deadline:
            try:
                seen = lines.get(timeout=1)
            except queue.Empty:
                continue
        assert "uploads/watched/again.jpg" in seen and "matched" in seen
    finally:
        watch.send_signal(signal.SIGINT)
        _, stderr = watch.communicate(timeout=20)
    assert watch.returncode == 0
    assert stderr == ""


def test_status_shows_queues_references_collection_and_results(
    stack: EmbeddedStack,
    uploaded: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc = stack.worker("status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    _, expected = uploaded  # type: ignore[misc]
    assert status["references"]["photos"] == 2 and status["references"]["labels"] == 2
    assert status["dead_letter_queue"]["messages"] == 0
    assert status["queue"]["url"] == stack.env["QUEUE_URL"]
    assert status["results"]["total"] >= len(expected)
    assert status["results"]["by_status"]["no_match"] == 1
    assert status["results"]["by_status"]["invalid_image"] == 1
    point_here(stack, monkeypatch)
    code, out, _ = run_main(capsys, "status")
    assert code == 0
    titles = [line.split("  ")[0].strip() for line in out.splitlines()]
    assert titles == ["Queue", "Dead letters", "References", "Collection", "Results"]
    assert "no_match 1" in out
