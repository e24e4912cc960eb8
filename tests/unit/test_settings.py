import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.cli import main
from worker.errors import ConfigError
from worker.settings import Strategy, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "photos")
    settings = load_settings()
    assert settings.bucket == "photos"
    assert settings.similarity_threshold == 80.0
    assert settings.strategy is Strategy.AUTO
    assert settings.concurrency == 8
    assert settings.reference_cache_ttl_seconds == 300
    assert (settings.reference_prefix, settings.upload_prefix) == ("references/", "uploads/")


def test_prefixes_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_PREFIX", "/incoming")
    assert load_settings().upload_prefix == "incoming/"


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCURRENCY", "lots")
    monkeypatch.setenv("SIMILARITY_THRESHOLD", "101")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = "\n".join(info.value.problems)
    assert "CONCURRENCY" in text
    assert "SIMILARITY_THRESHOLD" in text


def test_run_without_settings_exits_2_with_one_line_per_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("BUCKET_NAME", "SNS_TOPIC_ARN", "QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert [line.split(":")[2].strip() for line in err.splitlines()] == [
        "BUCKET_NAME",
        "SNS_TOPIC_ARN",
        "QUEUE_URL",
    ]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESULT_PREFIX", "uploads/results/"),
        ("REFERENCE_PREFIX", "uploads/"),
        ("UPLOAD_PREFIX", ""),
    ],
)
def test_overlapping_prefixes_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    problem = refused(monkeypatch, name, value)
    assert "overlap" in problem or "empty" in problem
    assert name in problem


def refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    """The one problem ``load_settings`` reports with ``name=value`` in the environment."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert len(info.value.problems) == 1
    return info.value.problems[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REKOGNITION_MAX_TPS", "inf"),
        ("REKOGNITION_MAX_TPS", "nan"),
        ("REKOGNITION_MAX_TPS", "1e-300"),
        ("SIMILARITY_THRESHOLD", "nan"),
        ("SIMILARITY_THRESHOLD", "-Infinity"),
        ("SHUTDOWN_GRACE_SECONDS", "inf"),
        ("SHUTDOWN_GRACE_SECONDS", "nan"),
        ("REFERENCE_CACHE_TTL_SECONDS", "inf"),
        ("REFERENCE_CACHE_TTL_SECONDS", "nan"),
        ("POLL_WAIT_SECONDS", "0"),
        ("POLL_WAIT_SECONDS", "inf"),
        ("CONCURRENCY", "inf"),
    ],
)
def test_numbers_are_finite_and_sensible(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    problem = refused(monkeypatch, name, value)
    assert problem.startswith(f"{name}: ")
    assert repr(value) in problem


def test_finite_numbers_at_the_edges_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REKOGNITION_MAX_TPS", "0.1")
    monkeypatch.setenv("POLL_WAIT_SECONDS", "1")
    monkeypatch.setenv("REFERENCE_CACHE_TTL_SECONDS", "1e9")  # "hardly ever list again"
    settings = load_settings()
    assert (settings.rekognition_max_tps, settings.poll_wait_seconds) == (0.1, 1)
    assert settings.reference_cache_ttl_seconds == 1e9


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value"),
    [("REKOGNITION_MAX_TPS", "inf"), ("REKOGNITION_MAX_TPS", "nan"), ("POLL_WAIT_SECONDS", "0")],
)
def test_worker_run_refuses_a_bad_number_in_one_line(tmp_path: Path, name: str, value: str) -> None:
    env = dict(
        os.environ,
        BUCKET_NAME="photos",
        SNS_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:results",
        QUEUE_URL="http://127.0.0.1:9/123456789012/uploads",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # nothing listens: no AWS is ever reached
        HEALTH_FILE=str(tmp_path / "heartbeat"),
        **{name: value},
    )
    done = subprocess.run(
        [sys.executable, "-m", "worker", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"worker: configuration: {name}: ")
