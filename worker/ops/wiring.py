"""The wiring `worker setup` creates, as pure functions: names, the queue policy, the redrive
policy, the bucket's notification configuration, what differs from what exists. No I/O here;
:mod:`worker.ops.provision` applies them with boto3.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from worker.errors import ConfigError
from worker.settings import prefix_problems

if TYPE_CHECKING:
    pass

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
    result_prefix: str = "results/"
    collection_id: str = "face-match-references"


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
    collection_id: str = "face-match-references",
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
        result_prefix=result_prefix,
        collection_id=collection_id,
    )


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


_REKOGNITION_ANY = [
    "rekognition:CompareFaces",
    "rekognition:CreateCollection",
    "rekognition:DetectFaces",
]
_REKOGNITION_COLLECTION = [
    "rekognition:DeleteFaces",
    "rekognition:DescribeCollection",
    "rekognition:IndexFaces",
    "rekognition:ListFaces",
    "rekognition:SearchFacesByImage",
]
_CONSUME_QUEUE = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
]


def worker_policy(
    plan_: SetupPlan,
    *,
    bucket_arn: str,
    queue_arn: str,
    dlq_arn: str,
    topic_arn: str,
    collection_arn: str,
) -> dict[str, Any]:
    """The IAM policy `worker run` needs on what `worker setup` made: the Terraform module's task
    role (deploy/terraform/modules/face-match-worker/iam.tf) without its KMS statement, as setup
    encrypts with SSE-SQS and no key of its own. tests/integration/test_iam_measured.py checks
    that both say the same; docs/aws-semantics.md says why each permission is there.
    """
    prefixes = (plan_.reference_prefix, plan_.upload_prefix, plan_.result_prefix)

    def allow(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
        return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}

    return {
        "Version": "2012-10-17",
        "Statement": [
            # No resource type for these (CreateCollection included): "*" is all they accept.
            allow("RekognitionWithoutResourceType", _REKOGNITION_ANY, ["*"]),
            allow("RekognitionCollection", _REKOGNITION_COLLECTION, [collection_arn]),
            allow(
                "ReadReferencesUploadsAndOwnResults",
                ["s3:GetObject"],
                [f"{bucket_arn}/{prefix}*" for prefix in prefixes],
            ),
            allow(
                "ReadTheUploadedVersion",
                ["s3:GetObjectVersion"],
                [f"{bucket_arn}/{plan_.upload_prefix}*"],
            ),
            allow("WriteResultsOnly", ["s3:PutObject"], [f"{bucket_arn}/{plan_.result_prefix}*"]),
            # Also what makes S3 answer 404 (not 403) for a missing key under these prefixes.
            allow(
                "ListOwnPrefixes",
                ["s3:ListBucket"],
                [bucket_arn],
                Condition={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
            ),
            allow("ConsumeUploadQueue", _CONSUME_QUEUE, [queue_arn]),
            allow(
                "DeadLetterUnprocessableMessages",
                ["sqs:GetQueueAttributes", "sqs:SendMessage"],
                [dlq_arn],
            ),
            allow("PublishResults", ["sns:GetTopicAttributes", "sns:Publish"], [topic_arn]),
        ],
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
