"""`worker setup`: the tutorial's manual wiring as one idempotent run of boto3 calls.

bucket ─(ObjectCreated under the upload prefix; created/removed under the reference prefix)→
queue ─(redrive after ``maxReceiveCount`` receives)→ dead-letter queue; results topic with an
optional e-mail subscription. Each step reads what exists, changes only what differs and says
what it changed, so a second run changes nothing.

The documents (queue policy, notification configuration, redrive policy) are built by pure
functions, tested without AWS; only :func:`provision` and its helpers do I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from worker.errors import ConfigError, WorkerError
from worker.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

log = get_logger(__name__)

# Receives before SQS moves a message to the dead-letter queue (CONTRACT.md: default 5).
MAX_RECEIVE_COUNT = 5
# Six times the longest time one upload may take (30 s); the worker extends it while it works.
VISIBILITY_TIMEOUT_SECONDS = 180
# SQS's maximum retention: dead letters wait two weeks for a human.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# Long polling on the queue itself, for consumers that do not ask for it.
RECEIVE_WAIT_SECONDS = 20
# Ids of our entries in the bucket's notification configuration; other entries are kept.
UPLOADS_NOTIFICATION_ID = "face-match-uploads"
REFERENCES_NOTIFICATION_ID = "face-match-references"
QUEUE_POLICY_SID = "FaceMatchBucketSendsEvents"
UPLOAD_EVENTS = ("s3:ObjectCreated:*",)
REFERENCE_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
# SQS queue and SNS topic names: letters, digits, hyphens, underscores; 80 characters at most.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_DLQ_SUFFIX = "-dlq"

_Name = TypeVar("_Name", bound=str)


@dataclass(frozen=True)
class SetupPlan:
    """What to create or verify. Build it with :func:`plan`."""

    bucket: str
    queue_name: str
    dlq_name: str
    topic_name: str
    emails: tuple[str, ...] = ()
    reference_prefix: str = "references/"
    upload_prefix: str = "uploads/"
    max_receive_count: int = MAX_RECEIVE_COUNT
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS


@dataclass
class Provisioned:
    """What exists after :func:`provision`, and what this run changed to get there."""

    bucket: str
    queue_url: str
    dlq_url: str
    topic_arn: str
    changes: list[str] = field(default_factory=list)

    def exports(self) -> list[tuple[str, str]]:
        return [
            ("BUCKET_NAME", self.bucket),
            ("QUEUE_URL", self.queue_url),
            ("SNS_TOPIC_ARN", self.topic_arn),
            ("DLQ_URL", self.dlq_url),
        ]


# ---------------------------------------------------------------------------------- pure parts


def default_base_name(bucket: str) -> str:
    """A queue/topic name stem from a bucket name (dots are not allowed in SQS names)."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", bucket)
    return stem[: 80 - len("-uploads-dlq")]


def plan(
    bucket: str,
    *,
    queue_name: str | None = None,
    topic_name: str | None = None,
    emails: Sequence[str] = (),
    reference_prefix: str = "references/",
    upload_prefix: str = "uploads/",
    result_prefix: str = "results/",
    max_receive_count: int = MAX_RECEIVE_COUNT,
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS,
) -> SetupPlan:
    """Validate the request; raise :class:`ConfigError` with one line per problem."""
    stem = default_base_name(bucket)
    queue = queue_name or f"{stem}-uploads"
    topic = topic_name or f"{stem}-results"
    dlq = f"{queue[: 80 - len(_DLQ_SUFFIX)]}{_DLQ_SUFFIX}"
    problems = []
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        problems.append(f"--bucket: {bucket!r} is not a valid S3 bucket name")
    for option, name in (("--queue-name", queue), ("--topic-name", topic)):
        if not _NAME.fullmatch(name):
            problems.append(f"{option}: {name!r} must be 1-80 letters, digits, '-' or '_'")
    for email in emails:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            problems.append(f"--email: {email!r} is not an e-mail address")
    problems += prefix_problems(reference_prefix, upload_prefix, result_prefix)
    if problems:
        raise ConfigError(problems)
    return SetupPlan(
        bucket=bucket,
        queue_name=queue,
        dlq_name=dlq,
        topic_name=topic,
        emails=tuple(dict.fromkeys(emails)),
        reference_prefix=reference_prefix,
        upload_prefix=upload_prefix,
        max_receive_count=max_receive_count,
        visibility_timeout_seconds=visibility_timeout_seconds,
    )


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


def create_bucket_args(bucket: str, region: str) -> dict[str, Any]:
    """CreateBucket's arguments: us-east-1 takes no LocationConstraint, every other region must."""
    if region == "us-east-1":
        return {"Bucket": bucket}
    return {"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": region}}


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def redrive_policy(dlq_arn: str, max_receive_count: int = MAX_RECEIVE_COUNT) -> dict[str, Any]:
    return {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}


def queue_policy_statement(
    queue_arn: str, source_bucket_arn: str, account_id: str
) -> dict[str, Any]:
    """S3 may send to the queue for this bucket of this account only (confused-deputy guard)."""
    return {
        "Sid": QUEUE_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {
            "ArnEquals": {"aws:SourceArn": source_bucket_arn},
            "StringEquals": {"aws:SourceAccount": account_id},
        },
    }


def queue_policy(
    queue_arn: str,
    source_bucket_arn: str,
    account_id: str,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The queue's policy with our statement in it; other statements of ``existing`` are kept."""
    ours = queue_policy_statement(queue_arn, source_bucket_arn, account_id)
    others = [
        statement
        for statement in (existing or {}).get("Statement", [])
        if statement.get("Sid") != QUEUE_POLICY_SID
    ]
    return {
        "Version": "2012-10-17",
        "Id": (existing or {}).get("Id", f"{queue_arn}/policy"),
        "Statement": [*others, ours],
    }


def _queue_entry(
    entry_id: str, queue_arn: str, events: Sequence[str], prefix: str
) -> dict[str, Any]:
    return {
        "Id": entry_id,
        "QueueArn": queue_arn,
        "Events": list(events),
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
    }


def _entry_prefix(entry: Mapping[str, Any]) -> str | None:
    rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    for rule in rules:
        if str(rule.get("Name", "")).lower() == "prefix":
            return str(rule.get("Value", ""))
    return None


def _same_entry(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal as S3 means it: same target, events and filter (rule names are case-blind)."""

    def rules(entry: Mapping[str, Any]) -> set[tuple[str, str]]:
        found = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        return {(str(r.get("Name", "")).lower(), str(r.get("Value", ""))) for r in found}

    return (
        a.get("QueueArn") == b.get("QueueArn")
        and set(a.get("Events", [])) == set(b.get("Events", []))
        and rules(a) == rules(b)
    )


def notification_configuration(
    existing: Mapping[str, Any],
    queue_arn: str,
    *,
    upload_prefix: str,
    reference_prefix: str,
) -> dict[str, Any]:
    """``existing`` (as GetBucketNotificationConfiguration returns it) with our two entries.

    Topic, Lambda and EventBridge entries and other queues' entries are kept. An entry that
    already sends the same events of the same prefix to our queue under another id (set up by
    hand, say) is replaced by ours: S3 refuses two overlapping entries.
    """
    wanted = [
        _queue_entry(UPLOADS_NOTIFICATION_ID, queue_arn, UPLOAD_EVENTS, upload_prefix),
        _queue_entry(REFERENCES_NOTIFICATION_ID, queue_arn, REFERENCE_EVENTS, reference_prefix),
    ]
    ours = {entry["Id"] for entry in wanted}
    kept = [
        entry
        for entry in existing.get("QueueConfigurations", [])
        if entry.get("Id") not in ours and not any(_same_entry(entry, w) for w in wanted)
    ]
    merged = {
        key: value
        for key, value in existing.items()
        if key not in {"ResponseMetadata", "QueueConfigurations"}
    }
    merged["QueueConfigurations"] = [*kept, *wanted]
    return merged


def notification_is_current(
    existing: Mapping[str, Any], queue_arn: str, *, upload_prefix: str, reference_prefix: str
) -> bool:
    """Whether ``existing`` already holds our two entries exactly (nothing to put)."""
    wanted = notification_configuration(
        {}, queue_arn, upload_prefix=upload_prefix, reference_prefix=reference_prefix
    )["QueueConfigurations"]
    present = {entry.get("Id"): entry for entry in existing.get("QueueConfigurations", [])}
    return all(
        entry["Id"] in present and _same_entry(present[entry["Id"]], entry) for entry in wanted
    )


def attribute_changes(
    current: Mapping[_Name, str], wanted: Mapping[_Name, str]
) -> dict[_Name, str]:
    """The attributes of ``wanted`` whose current value differs (JSON values compared parsed)."""

    def same(a: str | None, b: str) -> bool:
        if a == b:
            return True
        if a is None:
            return False
        try:
            return bool(json.loads(a) == json.loads(b))
        except ValueError:
            return False

    return {name: value for name, value in wanted.items() if not same(current.get(name), value)}


# --------------------------------------------------------------------------------------- I/O


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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
        code = _error_code(exc)
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise WorkerError(
                f"bucket {bucket} exists but these credentials may not use it "
                "(another account's bucket, or missing s3:ListBucket)"
            ) from exc
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        try:
            s3.create_bucket(**create_bucket_args(bucket, region))
        except ClientError as create_exc:
            if _error_code(create_exc) == "BucketAlreadyExists":
                raise WorkerError(
                    f"bucket name {bucket} is taken by another account: choose another"
                ) from create_exc
            if _error_code(create_exc) != "BucketAlreadyOwnedByYou":
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
        if _error_code(exc) in {
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "NonExistentQueue",
        }:
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
        if _error_code(exc) not in {"NotFound", "NotFoundException"}:
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
    )
