"""`worker setup`: the tutorial's manual wiring as one idempotent run of boto3 calls.

bucket ─(ObjectCreated under the upload prefix; created/removed under the reference prefix)→
queue ─(redrive after ``maxReceiveCount`` receives)→ dead-letter queue; results topic with an
optional e-mail subscription. Each step reads what exists, changes only what differs and says
what it changed, so a second run changes nothing.

The documents (queue policy, notification configuration, redrive policy) are built by the pure
functions of :mod:`worker.ops.wiring`, tested without AWS; this module applies them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from worker.aws.errors import error_code, translate
from worker.errors import AccessDeniedError, AlreadyExistsError, NotFoundError, WorkerError
from worker.ops.wiring import (
    DLQ_RETENTION_SECONDS,
    RECEIVE_WAIT_SECONDS,
    SetupPlan,
    attribute_changes,
    bucket_arn,
    create_bucket_args,
    notification_configuration,
    notification_is_current,
    queue_policy,
    redrive_policy,
    worker_policy,
)
from worker.telemetry.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

log = get_logger(__name__)


@dataclass
class Provisioned:
    """What exists after :func:`provision`, and what this run changed to get there."""

    bucket: str
    queue_url: str
    dlq_url: str
    topic_arn: str
    changes: list[str] = field(default_factory=list)
    worker_policy: dict[str, Any] = field(default_factory=dict)
    """The IAM policy `worker run` needs on these resources (:func:`worker.ops.wiring.worker_policy`)."""

    def exports(self) -> list[tuple[str, str]]:
        return [
            ("BUCKET_NAME", self.bucket),
            ("QUEUE_URL", self.queue_url),
            ("SNS_TOPIC_ARN", self.topic_arn),
            ("DLQ_URL", self.dlq_url),
        ]


# --------------------------------------------------------------------------------------- I/O


def caller_account(sts: Any) -> tuple[str, str]:
    """(account id, partition) of the credentials in use."""
    identity = sts.get_caller_identity()
    arn = str(identity.get("Arn", "arn:aws:"))
    partition = arn.split(":")[1] if arn.count(":") >= 2 else "aws"
    return str(identity["Account"]), partition or "aws"


def ensure_bucket(s3: S3Client, bucket: str, region: str, changes: list[str]) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        error = translate(exc)
        if isinstance(error, AccessDeniedError):
            raise WorkerError(
                f"bucket {bucket} exists but these credentials may not use it "
                "(another account's bucket, or missing s3:ListBucket)"
            ) from exc
        if not isinstance(error, NotFoundError):
            raise
        try:
            s3.create_bucket(**create_bucket_args(bucket, region))
        except ClientError as create_exc:
            if error_code(create_exc) == "BucketAlreadyExists":  # S3's own: another account's
                raise WorkerError(
                    f"bucket name {bucket} is taken by another account: choose another"
                ) from create_exc
            if not isinstance(translate(create_exc), AlreadyExistsError):
                raise
        else:
            changes.append(f"created bucket {bucket} in {region}")
            log.info("bucket_created", bucket=bucket, region=region)
            return
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    if location == "EU":  # the legacy name of eu-west-1
        location = "eu-west-1"
    if location != region:
        raise WorkerError(
            f"bucket {bucket} is in {location} but the queue would be in {region}: S3 sends "
            f"notifications only within its region (set AWS_REGION={location})"
        )
    log.info("bucket_exists", bucket=bucket, region=region)


def _queue_url(sqs: SQSClient, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if isinstance(translate(exc), NotFoundError):
            return None
        raise


def ensure_queue(
    sqs: SQSClient,
    name: str,
    attributes: Mapping[QueueAttributeNameType, str],
    changes: list[str],
    *,
    create_only: Mapping[QueueAttributeNameType, str] | None = None,
) -> tuple[str, str]:
    """(url, arn) of queue ``name``, created with ``attributes`` (+ ``create_only``) or brought
    to ``attributes``. ``create_only`` (encryption) is never imposed on an existing queue."""
    url = _queue_url(sqs, name)
    if url is None:
        url = sqs.create_queue(QueueName=name, Attributes={**attributes, **(create_only or {})})[
            "QueueUrl"
        ]
        changes.append(f"created queue {name}")
        log.info("queue_created", queue=name, url=url)
    else:
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        differing = attribute_changes(current, attributes)
        if differing:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=differing)
            changes.append(f"updated queue {name}: {', '.join(sorted(differing))}")
            log.info("queue_updated", queue=name, attributes=sorted(differing))
        else:
            log.info("queue_unchanged", queue=name)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def ensure_queue_policy(
    sqs: SQSClient,
    queue_url: str,
    queue_arn: str,
    changes: list[str],
    *,
    source_bucket_arn: str,
    account_id: str,
) -> None:
    current = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])
    existing_text = current.get("Attributes", {}).get("Policy")
    existing = json.loads(existing_text) if existing_text else None
    wanted = queue_policy(queue_arn, source_bucket_arn, account_id, existing)
    if existing == wanted:
        log.info("queue_policy_unchanged", queue=queue_arn)
        return
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(wanted)})
    changes.append("set the queue policy (this bucket of this account may send)")
    log.info("queue_policy_set", queue=queue_arn, bucket=source_bucket_arn)


def ensure_notification(s3: S3Client, plan_: SetupPlan, queue_arn: str, changes: list[str]) -> None:
    existing: dict[str, Any] = dict(s3.get_bucket_notification_configuration(Bucket=plan_.bucket))
    if notification_is_current(
        existing,
        queue_arn,
        upload_prefix=plan_.upload_prefix,
        reference_prefix=plan_.reference_prefix,
    ):
        log.info("notification_unchanged", bucket=plan_.bucket)
        return
    merged = notification_configuration(
        existing,
        queue_arn,
        upload_prefix=plan_.upload_prefix,
        reference_prefix=plan_.reference_prefix,
    )
    s3.put_bucket_notification_configuration(
        Bucket=plan_.bucket,
        NotificationConfiguration=merged,  # type: ignore[arg-type]  # built as plain dicts
    )
    changes.append(
        f"set the bucket notification ({plan_.upload_prefix} created, "
        f"{plan_.reference_prefix} created/removed → queue)"
    )
    log.info("notification_set", bucket=plan_.bucket, queue=queue_arn)


def topic_arn_for(name: str, *, region: str, account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sns:{region}:{account_id}:{name}"


def ensure_topic(sns: SNSClient, arn: str, changes: list[str]) -> str:
    try:
        sns.get_topic_attributes(TopicArn=arn)
    except ClientError as exc:
        if not isinstance(translate(exc), NotFoundError):
            raise
    else:
        log.info("topic_exists", topic=arn)
        return arn
    created = sns.create_topic(Name=arn.rsplit(":", 1)[1])["TopicArn"]
    changes.append(f"created topic {created}")
    log.info("topic_created", topic=created)
    return created


def ensure_email_subscription(
    sns: SNSClient, topic_arn: str, email: str, changes: list[str]
) -> None:
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    for page in paginator.paginate(TopicArn=topic_arn):
        for subscription in page.get("Subscriptions", []):
            if subscription.get("Protocol") == "email" and subscription.get("Endpoint") == email:
                log.info(
                    "email_subscription_exists",
                    email=email,
                    pending=subscription.get("SubscriptionArn") == "PendingConfirmation",
                )
                return
    sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=email)
    changes.append(f"subscribed {email} to the topic (they must confirm the e-mail)")
    log.info("email_subscribed", email=email, topic=topic_arn)


def provision(
    plan_: SetupPlan,
    *,
    s3: S3Client,
    sqs: SQSClient,
    sns: SNSClient,
    sts: Any,
    region: str,
) -> Provisioned:
    """Create or verify every resource of ``plan_``; idempotent."""
    changes: list[str] = []
    try:
        account_id, partition = caller_account(sts)
        ensure_bucket(s3, plan_.bucket, region, changes)
        dlq_url, dlq_arn = ensure_queue(
            sqs,
            plan_.dlq_name,
            {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
            changes,
            create_only={"SqsManagedSseEnabled": "true"},
        )
        queue_url, queue_arn = ensure_queue(
            sqs,
            plan_.queue_name,
            {
                "VisibilityTimeout": str(plan_.visibility_timeout_seconds),
                "ReceiveMessageWaitTimeSeconds": str(RECEIVE_WAIT_SECONDS),
                "RedrivePolicy": json.dumps(redrive_policy(dlq_arn, plan_.max_receive_count)),
            },
            changes,
            create_only={"SqsManagedSseEnabled": "true"},
        )
        ensure_queue_policy(
            sqs,
            queue_url,
            queue_arn,
            changes,
            source_bucket_arn=bucket_arn(plan_.bucket, partition),
            account_id=account_id,
        )
        ensure_notification(s3, plan_, queue_arn, changes)
        topic_arn = ensure_topic(
            sns,
            topic_arn_for(
                plan_.topic_name, region=region, account_id=account_id, partition=partition
            ),
            changes,
        )
        for email in plan_.emails:
            ensure_email_subscription(sns, topic_arn, email, changes)
        policy = worker_policy(
            plan_,
            bucket_arn=bucket_arn(plan_.bucket, partition),
            queue_arn=queue_arn,
            dlq_arn=dlq_arn,
            topic_arn=topic_arn,
            collection_arn=f"arn:{partition}:rekognition:{region}:{account_id}"
            f":collection/{plan_.collection_id}",
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise WorkerError(
            f"setup failed in {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    return Provisioned(
        bucket=plan_.bucket,
        queue_url=queue_url,
        dlq_url=dlq_url,
        topic_arn=topic_arn,
        changes=changes,
        worker_policy=policy,
    )
