"""Settings, read once at start-up from the environment or a ``.env`` file (see CONTRACT.md).

AWS region, credentials and endpoints are deliberately absent: boto3 reads its own standard
variables (``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_REKOGNITION``, …), which is all
that the local mode changes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import ConfigError


class Strategy(StrEnum):
    COMPARE = "compare"
    COLLECTION = "collection"
    AUTO = "auto"


class LogFormat(StrEnum):
    """``auto`` (the default): console lines when stderr is a terminal, JSON lines otherwise."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


def _prefix(value: str) -> str:
    """Normalise an S3 prefix: no leading slash, exactly one trailing slash (or empty)."""
    value = value.strip().lstrip("/")
    if value and not value.endswith("/"):
        value += "/"
    return value


def prefix_problems(reference_prefix: str, upload_prefix: str, result_prefix: str) -> list[str]:
    """Notified prefixes must not overlap each other nor the results (a result would loop)."""
    problems = []
    named = {
        "REFERENCE_PREFIX": reference_prefix,
        "UPLOAD_PREFIX": upload_prefix,
        "RESULT_PREFIX": result_prefix,
    }
    for name, prefix in named.items():
        if not prefix:
            problems.append(f"{name}: must not be empty (it would cover the whole bucket)")
    items = list(named.items())
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1 :]:
            if a and b and (a.startswith(b) or b.startswith(a)):
                problems.append(f"{name_a} and {name_b} overlap ({a!r}, {b!r})")
    return problems


class Settings(BaseSettings):
    """Every variable of CONTRACT.md. Verbs call :meth:`require` for the ones they need."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
        # Every float setting is a finite number: ``inf`` and ``nan`` are refused (exit 2), never
        # passed on (``REKOGNITION_MAX_TPS=inf`` crashed the rate limiter). For a reference list
        # that is (almost) never listed again, give REFERENCE_CACHE_TTL_SECONDS a large number;
        # a reference-change notification, when the queue receives one, still refreshes it at once.
        allow_inf_nan=False,
    )

    bucket_name: str | None = None
    sns_topic_arn: str | None = None
    queue_url: str | None = None
    reference_prefix: str = "references/"
    upload_prefix: str = "uploads/"
    result_prefix: str = "results/"
    similarity_threshold: Annotated[float, Field(ge=0, le=100)] = 80.0
    strategy: Strategy = Strategy.AUTO
    concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    # At least one call per 10 s: a smaller rate spaces calls by hours (1e-300 made the limiter's
    # sleep overflow).
    rekognition_max_tps: Annotated[float | None, Field(ge=0.1)] = None
    reference_cache_ttl_seconds: Annotated[float, Field(ge=0)] = 300.0
    dlq_url: str | None = None
    log_format: LogFormat = LogFormat.AUTO
    # Unset: each verb's own default (INFO for the `run` and `embedded` servers, WARNING for the
    # one-shot verbs, whose output is on stdout).
    log_level: str | None = None
    # Not in the contract's table, added as optional tunables.
    shutdown_grace_seconds: Annotated[float, Field(gt=0, le=120)] = 25.0
    # SQS long polling: "The maximum long polling wait time is 20 seconds. [...] set a shorter
    # ReceiveMessage wait time (1 second minimum)" (https://docs.aws.amazon.com/AWSSimpleQueueService/
    # latest/SQSDeveloperGuide/best-practices-setting-up-long-polling.html). 0, short polling, made
    # the idle poll loop spin (1,418 receives in 5 s): refused.
    poll_wait_seconds: Annotated[int, Field(ge=1, le=20)] = 20
    visibility_timeout_seconds: Annotated[int, Field(ge=5, le=43200)] = 60
    max_object_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024
    collection_id: str = "face-match-references"
    emf_metrics: bool = True
    health_file: str | None = "/tmp/face-match-worker.heartbeat"  # noqa: S108  # per-container /tmp

    @field_validator("reference_prefix", "upload_prefix", "result_prefix")
    @classmethod
    def _normalise_prefix(cls, value: str) -> str:
        return _prefix(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator(
        "bucket_name", "sns_topic_arn", "queue_url", "dlq_url", "log_level", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _prefixes_apart(self) -> Settings:
        """Results or references under the upload prefix would be processed as uploads (a loop)."""
        problems = prefix_problems(self.reference_prefix, self.upload_prefix, self.result_prefix)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def require(self, *names: str) -> Settings:
        """Raise :class:`ConfigError` naming every variable in ``names`` that is unset."""
        missing = [
            f"{name.upper()}: required but not set" for name in names if not getattr(self, name)
        ]
        if missing:
            raise ConfigError(missing)
        return self

    @property
    def bucket(self) -> str:
        if not self.bucket_name:
            raise ConfigError(["BUCKET_NAME: required but not set"])
        return self.bucket_name


def load_settings(**overrides: object) -> Settings:
    """Read settings; turn pydantic's errors into one line per variable (``ConfigError``)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            if name:
                problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
            else:  # a rule across variables: the message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
        raise ConfigError(problems) from None
