"""`worker demo` end to end in a subprocess (embedded AWS + local face engine), and its pure
parts: output lines, log defaults, the environment that points boto3 at the embedded AWS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from PIL import Image

from tests.records import a_record
from worker.cli import main
from worker.faces import Box, Candidate
from worker.local import demo
from worker.local.samples import Sample, load_samples

# `worker demo` runs in well under a minute on a 2-core machine; this only guards against a hang.
DEMO_TEST_TIMEOUT_SECONDS = 180


@pytest.mark.slow
def test_demo_prints_each_result_as_it_arrives_and_draws_the_pictures(tmp_path: Path) -> None:
    started = time.monotonic()
    pictures = tmp_path / "pictures"
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "demo", "--annotate", str(pictures)],
        capture_output=True,
        text=True,
        timeout=DEMO_TEST_TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"exit {proc.returncode} after {elapsed:.1f} s:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    *lines, last = proc.stdout.splitlines()
    uploads = {upload.key: upload for upload in load_samples().uploads}
    assert len(lines) == len(uploads), proc.stdout
    seen = []
    for done, line in enumerate(lines, start=1):
        counter, key, status, *who = re.split(r"\s{2,}|(?<=\]) ", line, maxsplit=3)
        assert counter == f"[{done}/{len(uploads)}]", line
        upload = uploads[key]
        assert status == upload.expected_status, line
        labels = re.findall(r"([a-z_]+) \((\d+\.\d)%\)", who[0] if who else "")
        assert sorted(label for label, _ in labels) == sorted(upload.expected_labels), line
        assert all(float(similarity) >= 80 for _, similarity in labels), line
        seen.append(key)
    assert sorted(seen) == sorted(uploads)
    by_status = {uploads[key].expected_status: line for key, line in zip(seen, lines, strict=True)}
    assert "not an image" in by_status["invalid_image"]
    assert "1 face, nobody known" in by_status["no_match"]
    # Every upload that is an image is drawn; the text file named .jpg is not.
    images = sorted(
        PurePosixPath(k).name for k, u in uploads.items() if u.expected_status != "invalid_image"
    )
    assert sorted(path.name for path in pictures.iterdir()) == images
    assert last == f"Pictures with the matched faces drawn: {pictures} ({len(images)} files)"
    with Image.open(pictures / "both-side-by-side.jpg") as both:
        assert both.format == "JPEG"


def test_demo_without_the_extras_exits_2_naming_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "REQUIRED_MODULES", ("skimage", "no_such_module_for_the_demo"))
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "no_such_module_for_the_demo missing" in err
    assert "pip install 'face-match-worker[local,demo]'" in err


def test_demo_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "no AWS account" in text
    assert "embedded AWS" in text


def _result(status: str, matches: list[tuple[str, float]], **fields: Any) -> demo.DemoResult:
    fields.setdefault("faces_detected", len(matches))
    record = a_record(
        key=f"uploads/{status}.jpg",
        matches=[
            Candidate(label, f"references/{label}.jpg", similarity, Box(0.1, 0.1, 0.2, 0.2))
            for label, similarity in matches
        ],
        **fields,
    )
    sample = Sample(record.key, b"", "image/jpeg", "", status, tuple(m[0] for m in matches))
    return demo.DemoResult(sample, record)


def test_result_lines_count_and_say_who_or_why() -> None:
    results = [
        _result("matched", [("grace_hopper", 99.94), ("eileen_collins", 91.26)]),
        _result("no_match", [], faces_detected=2),
        _result("no_face", []),
        _result("invalid_image", [], reason="not an image (starts with b'hello')", invalid=True),
    ]
    width = max(len(result.record.key) for result in results)
    lines = [
        demo.Arrival(result, done, len(results), width).line()
        for done, result in enumerate(results, start=1)
    ]
    assert lines == [
        "[1/4] uploads/matched.jpg        matched        grace_hopper (99.9%), eileen_collins (91.3%)",
        "[2/4] uploads/no_match.jpg       no_match       2 faces, nobody known",
        "[3/4] uploads/no_face.jpg        no_face        -",
        "[4/4] uploads/invalid_image.jpg  invalid_image  not an image (starts with b'hello')",
    ]


def test_expectations_compare_status_and_labels_in_any_order() -> None:
    result = _result("matched", [("b", 90.0), ("a", 99.0)])
    assert result.as_expected
    other = _result("no_match", [], faces_detected=1)
    assert not demo.DemoResult(result.sample, other.record).as_expected


def test_logs_default_to_console_at_warning_unless_asked() -> None:
    assert demo.log_overrides(False, {}) == {
        "log_format": "console",
        "log_level": "WARNING",
        "emf_metrics": False,
    }
    assert demo.log_overrides(True, {}) == {"log_format": "console", "log_level": "INFO"}
    explicit = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "EMF_METRICS": "true"}
    assert demo.log_overrides(False, explicit) == {}


def test_boto3_is_pointed_at_the_embedded_endpoint_by_environment_only() -> None:
    environ = {
        "AWS_ENDPOINT_URL_S3": "https://s3.example.com",
        "AWS_PROFILE": "prod",
        "AWS_SESSION_TOKEN": "real-looking",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        "NO_PROXY": "example.com",
        "PATH": "/usr/bin",
    }
    demo.point_boto3_at(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1234", "AWS_ACCESS_KEY_ID": "testing"}, environ
    )
    assert environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1234"
    assert environ["AWS_ACCESS_KEY_ID"] == "testing"
    for gone in (
        "AWS_ENDPOINT_URL_S3",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        assert gone not in environ
    assert environ["AWS_CONFIG_FILE"] == os.devnull
    assert environ["NO_PROXY"].split(",")[:2] == ["example.com", "127.0.0.1"]
    assert environ["PATH"] == "/usr/bin"
