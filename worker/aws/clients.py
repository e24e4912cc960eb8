"""The one place boto3 clients are built.

Endpoints, region and credentials come from boto3's own environment variables, so the same code
talks to AWS or to the embedded AWS. Retry layering: S3 and SQS use botocore's ``standard``
retry mode; SNS gets a single botocore attempt because the pipeline retries its publish with
:func:`worker.aws.retry.with_retries`; Rekognition gets a single botocore attempt because :mod:`worker.aws.retry`
(tenacity) owns its retries — the two layers never multiply. Rekognition's client-side rate
limiting is the worker's own (:mod:`worker.recognition.ratelimit`: ``REKOGNITION_MAX_TPS``, or the
quota learned from the service's throttles), not botocore's ``adaptive`` mode: against a strict
one-second window that mode reached 0.82 x the quota (it cuts its rate by 30 % at each throttle,
to its 0.5 calls/s floor at the first ones, and its token bucket lets queued calls out in bursts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from worker import __version__

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
# The publish and the result record's writes after it run against the publish lease: one botocore
# attempt each, with short timeouts, so that the pipeline's own retries know how long a try can
# last (see worker.pipeline). Read timeouts are per socket read, not per request.
LEASED_READ_TIMEOUT_SECONDS = 10
LEASED_ATTEMPT_SECONDS = CONNECT_TIMEOUT_SECONDS + LEASED_READ_TIMEOUT_SECONDS
USER_AGENT = f"face-match-worker/{__version__}"


def _config(
    max_attempts: int,
    read_timeout: int = READ_TIMEOUT_SECONDS,
) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        # Names the worker in every request's User-Agent (CloudTrail's userAgent field); the
        # integration tests check that every call of `worker run` carries it.
        user_agent_extra=USER_AGENT,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
    )


@dataclass(frozen=True)
class Clients:
    """The AWS clients of one process. boto3 clients are thread-safe; sessions are not."""

    s3: S3Client
    sqs: SQSClient
    sns: SNSClient
    rekognition: RekognitionClient
    s3_leased: S3Client
    """The result record's writes: one attempt, short timeouts (``LEASED_ATTEMPT_SECONDS``)."""


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
        # The pipeline retries publishes itself, within the publish lease.
        sns=session.client("sns", config=_config(1, read_timeout=LEASED_READ_TIMEOUT_SECONDS)),
        rekognition=session.client("rekognition", config=_config(1)),
        s3_leased=session.client("s3", config=_config(1, read_timeout=LEASED_READ_TIMEOUT_SECONDS)),
    )
