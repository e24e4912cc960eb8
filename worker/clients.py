"""The one place boto3 clients are built.

Endpoints, region and credentials come from boto3's own environment variables, so the same code
talks to AWS or to the embedded AWS. Retry layering: S3 and SQS use botocore's ``standard``
retry mode; SNS gets a single botocore attempt because the pipeline retries its publish with
:func:`worker.retry.with_retries`; Rekognition gets a single botocore attempt because :mod:`worker.retry`
(tenacity) owns its retries — the two layers never multiply — in botocore's ``adaptive`` mode,
whose client-side rate limiter slows the client down when the service throttles (on top of the
fixed cap of ``REKOGNITION_MAX_TPS``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

# botocore attempts (first try included) for S3, SQS and SNS calls.
AWS_MAX_ATTEMPTS = 5
# Connection pool per client: enough for CONCURRENCY uploads plus the Rekognition fan-out.
MAX_POOL_CONNECTIONS = 64
CONNECT_TIMEOUT_SECONDS = 5
# Long polls hold a connection for 20 s: the read timeout must exceed it.
READ_TIMEOUT_SECONDS = 35


def _config(max_attempts: int, mode: Literal["standard", "adaptive"] = "standard") -> Config:
    return Config(
        retries={"mode": mode, "total_max_attempts": max_attempts},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


@dataclass(frozen=True)
class Clients:
    """The AWS clients of one process. boto3 clients are thread-safe; sessions are not."""

    s3: S3Client
    sqs: SQSClient
    sns: SNSClient
    rekognition: RekognitionClient


def _session() -> boto3.session.Session:
    # The contract names AWS_REGION; boto3 itself reads only AWS_DEFAULT_REGION and the profile.
    return boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)


def make_client(service: str, *, max_attempts: int = AWS_MAX_ATTEMPTS) -> Any:
    return _session().client(service, config=_config(max_attempts))  # type: ignore[call-overload]


def make_clients() -> Clients:
    session = _session()
    return Clients(
        s3=session.client("s3", config=_config(AWS_MAX_ATTEMPTS)),
        sqs=session.client("sqs", config=_config(AWS_MAX_ATTEMPTS)),
        sns=session.client("sns", config=_config(1)),  # the pipeline retries publishes itself
        rekognition=session.client("rekognition", config=_config(1, mode="adaptive")),
    )
