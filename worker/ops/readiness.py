"""What `worker run` checks before its first poll: each resource it depends on, one call each, so
that a wrong ``QUEUE_URL``, ``DLQ_URL``, ``BUCKET_NAME`` or ``SNS_TOPIC_ARN``, or a missing
permission, stops it at once with one line per problem (exit 2) rather than failing every receive
or every upload later.

========================  ============================================  =========================
resource                  call                                          permission
========================  ============================================  =========================
queue (``QUEUE_URL``)     GetQueueAttributes ``RedrivePolicy``: the     sqs:GetQueueAttributes
                          DLQ when ``DLQ_URL`` is unset, and
                          maxReceiveCount
DLQ (``DLQ_URL``)         GetQueueAttributes ``QueueArn``; unset:       sqs:GetQueueAttributes
                          GetQueueUrl of the redrive policy's target    (sqs:GetQueueUrl)
bucket (``BUCKET_NAME``)  ListObjectsV2 of ``REFERENCE_PREFIX``, one    s3:ListBucket on that
                          key                                           prefix
topic (``SNS_TOPIC_ARN``) GetTopicAttributes                            sns:GetTopicAttributes
========================  ============================================  =========================

Not HeadBucket: it needs ``s3:ListBucket`` with no ``s3:prefix``, which the task role — allowed
to list its own prefixes only — does not have; listing the references is what the worker does
next anyway.

No region, no or refused credentials, an unreachable endpoint: the first call raises, and the CLI
says so in one line (:func:`worker.aws.errors.access_problem`); throttling or a 5xx after
botocore's retries is raised too (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from worker.aws.errors import ENVIRONMENT_PROBLEMS, access_problem, translate
from worker.errors import AccessDeniedError, ConfigError, NotFoundError, PermanentError
from worker.ops.dlq import dead_letter_target_url, receive_limit
from worker.telemetry.logs import get_logger

if TYPE_CHECKING:
    from worker.aws.clients import Clients
    from worker.settings import Settings

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Ready:
    """What the checks learnt that the runner needs."""

    dlq_url: str | None
    max_receive_count: int | None


def check(settings: Settings, clients: Clients) -> Ready:
    """Check the queue, the DLQ, the bucket and the topic; raise :class:`ConfigError` with one
    line per resource that is missing or refused."""
    problems: list[str] = []
    queue_url = str(settings.queue_url)
    queue = _probe(
        problems,
        "QUEUE_URL",
        f"queue {queue_url}",
        "sqs:GetQueueAttributes",
        lambda: clients.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
        ),
    )
    policy = queue.get("Attributes", {}).get("RedrivePolicy") if queue is not None else None
    dlq_url = settings.dlq_url
    if dlq_url:
        named = dlq_url
        _probe(
            problems,
            "DLQ_URL",
            f"queue {named}",
            "sqs:GetQueueAttributes",
            lambda: clients.sqs.get_queue_attributes(QueueUrl=named, AttributeNames=["QueueArn"]),
        )
    elif queue is not None:
        dlq_url = _redrive_target(problems, clients, policy)
    bucket = settings.bucket
    _probe(
        problems,
        "BUCKET_NAME",
        f"bucket {bucket}",
        f"s3:ListBucket on {settings.reference_prefix}",
        lambda: clients.s3.list_objects_v2(
            Bucket=bucket, Prefix=settings.reference_prefix, MaxKeys=1
        ),
    )
    topic_arn = str(settings.sns_topic_arn)
    _probe(
        problems,
        "SNS_TOPIC_ARN",
        f"topic {topic_arn}",
        "sns:GetTopicAttributes",
        lambda: clients.sns.get_topic_attributes(TopicArn=topic_arn),
    )
    if problems:
        raise ConfigError(problems)
    return Ready(dlq_url=dlq_url, max_receive_count=receive_limit(policy))


def _probe(
    problems: list[str], setting: str, what: str, permission: str, call: Callable[[], T]
) -> T | None:
    """``call()``; when the resource is missing or refused, a line in ``problems`` and None."""
    try:
        return call()
    except ParamValidationError as exc:  # e.g. a bucket name S3 would never accept
        problems.append(f"{setting}: {what}: {' '.join(str(exc).split())}")
        return None
    except (ClientError, BotoCoreError) as exc:
        problem = access_problem(exc)
        if problem is not None and problem.kind in ENVIRONMENT_PROBLEMS:
            raise  # region, credentials, endpoint: the same for every resource
        error = translate(exc)
        if isinstance(error, NotFoundError):
            problems.append(f"{setting}: {what} does not exist")
        elif isinstance(error, AccessDeniedError):
            problems.append(
                f"{setting}: access denied to {what} ({permission}): allow it for the "
                "worker's credentials"
            )
        elif isinstance(error, PermanentError):
            problems.append(f"{setting}: {what} refused: {error}")
        else:
            raise  # throttled, 5xx: a failure at run time, not a wrong setting
        return None


def _redrive_target(problems: list[str], clients: Clients, policy: Any) -> str | None:
    """The DLQ the queue's redrive policy names, when DLQ_URL is unset; None (and a warning)
    when there is none: the worker then keeps unprocessable messages on the queue."""
    try:
        return dead_letter_target_url(clients.sqs, policy)
    except ConfigError as exc:
        log.warning("no_dead_letter_queue", problem="; ".join(exc.problems))
    except AccessDeniedError as exc:
        problems.append(f"DLQ_URL: not set, and finding the redrive target was denied: {exc}")
    return None
