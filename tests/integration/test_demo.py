"""`worker demo` end to end in a subprocess (embedded AWS + local face engine), and its pure
parts: output lines, log defaults, the environment that points boto3 at the embedded AWS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from worker import demo
from worker.cli import main
from worker.samples import Sample, load_samples

# `worker demo` runs in well under a minute on a 2-core machine; this only guards against a hang.
DEMO_TEST_TIMEOUT_SECONDS = 180


@pytest.mark.slow
def test_demo_prints_the_right_result_for_every_upload() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "demo"],
        capture_output=True,
        text=True,
        timeout=DEMO_TEST_TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"exit {proc.returncode} after {elapsed:.1f} s:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    uploads = load_samples().uploads
    assert len(lines) == len(uploads), proc.stdout
    for upload, line in zip(uploads, lines, strict=True):
        key, status, who = re.split(r"\s{2,}", line, maxsplit=2)
        assert (key, status) == (upload.key, upload.expected_status), line
        labels = re.findall(r"([a-z_]+) \((\d+\.\d)%\)", who)
        assert sorted(label for label, _ in labels) == sorted(upload.expected_labels), line
        assert all(float(similarity) >= 80 for _, similarity in labels), line
    invalid = lines[[u.expected_status for u in uploads].index("invalid_image")]
    assert "not an image" in invalid


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


def _result(status: str, matches: list[tuple[str, float]], **extra: object) -> demo.DemoResult:
    record = {
        "key": f"uploads/{status}.jpg",
        "status": status,
        "matches": [{"label": label, "similarity": similarity} for label, similarity in matches],
        "faces_detected": len(matches),
        "reason": None,
        **extra,
    }
    sample = Sample(str(record["key"]), b"", "image/jpeg", "", status, tuple(m[0] for m in matches))
    return demo.DemoResult(sample, record)


def test_result_lines_are_aligned_and_say_who_or_why() -> None:
    lines = demo.format_results(
        [
            _result("matched", [("grace_hopper", 99.94), ("eileen_collins", 91.26)]),
            _result("no_match", [], faces_detected=2),
            _result("no_face", []),
            _result("invalid_image", [], reason="not an image (starts with b'hello')"),
        ]
    )
    assert lines == [
        "uploads/matched.jpg        matched        grace_hopper (99.9%), eileen_collins (91.3%)",
        "uploads/no_match.jpg       no_match       2 faces, nobody known",
        "uploads/no_face.jpg        no_face        -",
        "uploads/invalid_image.jpg  invalid_image  not an image (starts with b'hello')",
    ]


def test_expectations_compare_status_and_labels_in_any_order() -> None:
    result = _result("matched", [("b", 90.0), ("a", 99.0)])
    assert result.as_expected
    wrong = demo.DemoResult(result.sample, {**result.record, "status": "no_match", "matches": []})
    assert not wrong.as_expected


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
