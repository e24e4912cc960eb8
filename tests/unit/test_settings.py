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
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "overlap" in info.value.problems[0] or "empty" in info.value.problems[0]
    assert name in info.value.problems[0]
