"""The IAM evaluator behind tests/integration/test_iam_measured.py, on synthetic calls: what it
allows, that a call without its permission fails the check, and that `worker setup` writes the
same policies as the Terraform module (queue policy; the worker's own policy, but for the key)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.authz import Deployment, judge, requests, terraform_policy
from tests.deploy.hcl import MODULE, Config
from tests.deploy.iam import (
    ALLOW,
    DENY,
    Condition,
    Request,
    Statement,
    action_matches,
    decide,
    from_json,
    resource_matches,
)
from worker.ops.wiring import bucket_arn, plan, queue_policy, worker_policy

ACCOUNT, REGION = "111122223333", "eu-west-1"
SQS = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}"
ENV = {
    "BUCKET_NAME": "photos",
    "QUEUE_URL": f"{SQS}/photos-uploads",
    "DLQ_URL": f"{SQS}/photos-uploads-dlq",
    "SNS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:photos-results",
    "AWS_REGION": REGION,
}
DEP = Deployment.from_environment(ENV)


@pytest.fixture(scope="module")
def tf() -> Config:
    return Config(MODULE)


def call(service: str, operation: str, error: str | None = None, **params: Any) -> dict[str, Any]:
    return {
        "service": service,
        "operation": operation,
        "params": params,
        "marked": True,
        "status": 404 if error == "404" else 200,
        "error": error,
    }


def verdict_of(tf: Config, *calls: dict[str, Any]) -> list[str]:
    return judge([({"env": ENV}, list(calls))], tf, marker="face-match-worker/").problems


# --- the task role against single calls -----------------------------------------------------


def test_the_deployment_is_read_from_the_workers_environment() -> None:
    assert DEP.queue_arn == f"arn:aws:sqs:{REGION}:{ACCOUNT}:photos-uploads"
    assert DEP.dlq_arn.endswith(":photos-uploads-dlq")
    assert (DEP.result_prefix, DEP.collection_id) == ("results/", "face-match-references")
    assert DEP.collection_arn.endswith(":collection/face-match-references")


def test_every_path_of_one_upload_is_allowed(tf: Config) -> None:
    image = {"S3Object": {"Bucket": "photos", "Name": "uploads/a.jpg", "Version": "v1"}}
    assert not verdict_of(
        tf,
        call("sqs", "ReceiveMessage", QueueUrl=ENV["QUEUE_URL"]),
        call("s3", "HeadObject", Bucket="photos", Key="uploads/a.jpg", VersionId="v1"),
        call("s3", "HeadObject", "404", Bucket="photos", Key="results/uploads/a.jpg.json"),
        call("s3", "ListObjectsV2", Bucket="photos", Prefix="references/"),
        call("rekognition", "DetectFaces", Image=image),
        call("rekognition", "SearchFacesByImage", CollectionId=DEP.collection_id, Image=image),
        call("s3", "PutObject", Bucket="photos", Key="results/uploads/a.jpg.json"),
        call("sns", "Publish", TopicArn=ENV["SNS_TOPIC_ARN"]),
        call("sqs", "DeleteMessageBatch", QueueUrl=ENV["QUEUE_URL"]),
        call("sqs", "SendMessage", QueueUrl=ENV["DLQ_URL"]),
    )


def test_a_missing_key_needs_list_bucket_with_its_prefix(tf: Config) -> None:
    needed = requests(
        call("s3", "HeadObject", "404", Bucket="photos", Key="results/uploads/new.jpg.json"), DEP
    )
    listing = [r for r in needed if r.action == "s3:ListBucket"]
    assert listing == [
        Request(
            "s3:ListBucket",
            "arn:aws:s3:::photos",
            {"s3:prefix": "results/uploads/new.jpg.json"},
            why=listing[0].why,
        )
    ]
    policy = terraform_policy(tf, "task", DEP)
    assert decide(policy, listing[0]) == ALLOW
    # Before issue 11 the role listed references/ only: the look-up of every new upload failed.
    before = (
        Statement(
            "ListReferencesOnly",
            ALLOW,
            ("s3:ListBucket",),
            ("arn:aws:s3:::photos",),
            (Condition("StringLike", "s3:prefix", ("references/", "references/*")),),
        ),
    )
    assert decide(before, listing[0]) == "ImplicitDeny"
    assert (
        decide(policy, Request("s3:ListBucket", "arn:aws:s3:::photos", {"s3:prefix": ""})) != ALLOW
    )
    assert decide(policy, Request("s3:ListBucket", "arn:aws:s3:::photos")) != ALLOW  # no prefix


def test_a_new_call_without_its_permission_fails_the_check(tf: Config) -> None:
    """What the measured test reports when the worker starts making a call its role lacks."""
    problems = verdict_of(
        tf,
        call("s3", "PutObject", Bucket="photos", Key="uploads/overwritten.jpg"),
        call("s3", "GetObject", Bucket="photos", Key="results/a.json", VersionId="v1"),
        call("sqs", "PurgeQueue", QueueUrl=ENV["DLQ_URL"]),
        call("s3", "DeleteObject", Bucket="photos", Key="uploads/a.jpg"),
    )
    assert any(
        "denied s3:PutObject on arn:aws:s3:::photos/uploads/overwritten.jpg" in p for p in problems
    )
    assert any(
        "denied s3:GetObjectVersion on arn:aws:s3:::photos/results/a.json" in p for p in problems
    )
    assert any("does not map sqs:PurgeQueue" in p for p in problems)
    assert any("does not map s3:DeleteObject" in p for p in problems)


def test_calls_without_the_workers_user_agent_are_reported(tf: Config) -> None:
    unmarked = call("sns", "Publish", TopicArn=ENV["SNS_TOPIC_ARN"]) | {"marked": False}
    (problem,) = verdict_of(tf, unmarked)
    assert "User-Agent" in problem


def test_grants_no_call_needed_are_reported(tf: Config) -> None:
    verdict = judge([({"env": ENV}, [call("sns", "Publish", TopicArn=ENV["SNS_TOPIC_ARN"])])], tf)
    assert ("PublishResults", "sns:Publish", "${aws_sns_topic.results.arn}") in verdict.used
    assert ("ConsumeUploadQueue", "sqs:ReceiveMessage", "${aws_sqs_queue.uploads.arn}") in (
        verdict.unused
    )
    assert ("UseTheModuleKey", "kms:GenerateDataKey", "${aws_kms_key.this.arn}") in verdict.used


def test_requests_on_others_resources_are_refused_but_not_the_roles_business(tf: Config) -> None:
    foreign = call("s3", "HeadObject", Bucket="someone-else", Key="uploads/a.jpg")
    (request,) = requests(foreign, DEP)
    assert decide(terraform_policy(tf, "task", DEP), request) == "ImplicitDeny"
    assert not verdict_of(tf, foreign)


# --- IAM semantics ---------------------------------------------------------------------------


def test_resource_wildcards_stay_within_a_segment_unless_last() -> None:
    assert resource_matches("arn:aws:s3:::photos/results/*", "arn:aws:s3:::photos/results/a/b.json")
    assert not resource_matches("arn:aws:s3:::photos/results/*", "arn:aws:s3:::photos/uploads/a")
    assert not resource_matches("arn:aws:s3:::photos/results/*", "arn:aws:s3:::photos-2/results/a")
    assert resource_matches("arn:aws:sqs:*:111122223333:q", "arn:aws:sqs:eu-west-1:111122223333:q")
    assert not resource_matches("arn:aws:sqs:eu-*-1:1:q", "arn:aws:sqs:eu-west:x-1:1:q")
    assert resource_matches("arn:aws:sqs:eu-west-1:*", "arn:aws:sqs:eu-west-1:1:q")
    assert resource_matches("*", "arn:aws:rekognition:eu-west-1:1:collection/c")


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert action_matches("kms:*", "kms:CreateAlias")
    assert action_matches("S3:GetObject", "s3:getobject")
    assert not action_matches("s3:GetObject", "s3:GetObjectVersion")


def test_conditions_and_explicit_denies() -> None:
    listing = Statement(
        "L",
        ALLOW,
        ("s3:ListBucket",),
        ("arn:aws:s3:::photos",),
        (Condition("StringLike", "s3:prefix", ("results/*",)),),
    )
    deny = Statement(
        "D", DENY, ("s3:*",), ("*",), (Condition("Bool", "aws:SecureTransport", ("false",)),)
    )
    ok = Request(
        "s3:ListBucket",
        "arn:aws:s3:::photos",
        {"S3:Prefix": "results/x", "aws:SecureTransport": "true"},
    )
    assert decide((listing, deny), ok) == ALLOW
    assert (
        decide((listing, deny), Request(ok.action, ok.resource, {"s3:prefix": "uploads/x"}))
        != ALLOW
    )
    plain = Request(
        ok.action, ok.resource, {"s3:prefix": "results/x", "aws:SecureTransport": "false"}
    )
    assert decide((listing, deny), plain) == DENY
    with pytest.raises(NotImplementedError):
        decide(
            (
                Statement(
                    "N", ALLOW, ("s3:*",), ("*",), (Condition("NumericLessThan", "k", ("1",)),)
                ),
            ),
            Request("s3:GetObject", "x", {"k": "0"}),
        )


# --- what `worker setup` writes is what the module writes -----------------------------------


def _canonical(statements: Any) -> set[Any]:
    return {s.canonical() for s in statements}


def test_worker_setup_writes_the_modules_queue_policy(tf: Config) -> None:
    written = from_json(queue_policy(DEP.queue_arn, bucket_arn("photos"), ACCOUNT))
    assert _canonical(written) == _canonical(terraform_policy(tf, "queue", DEP))

    def delivery(bucket: str, account: str = ACCOUNT) -> Request:
        return Request(
            "sqs:SendMessage",
            DEP.queue_arn,
            {"aws:SourceArn": f"arn:aws:s3:::{bucket}", "aws:SourceAccount": account},
            principal=("Service", "s3.amazonaws.com"),
        )

    for policy in (written, terraform_policy(tf, "queue", DEP)):
        assert decide(policy, delivery("photos")) == ALLOW
        assert decide(policy, delivery("someone-elses-photos")) != ALLOW
        assert decide(policy, delivery("photos", account="444455556666")) != ALLOW


def test_worker_setup_writes_the_task_role_but_for_the_key(tf: Config) -> None:
    policy = worker_policy(
        plan("photos"),
        bucket_arn=DEP.bucket_arn,
        queue_arn=DEP.queue_arn,
        dlq_arn=DEP.dlq_arn,
        topic_arn=DEP.topic_arn,
        collection_arn=DEP.collection_arn,
    )
    task = [s for s in terraform_policy(tf, "task", DEP) if s.sid != "UseTheModuleKey"]
    assert _canonical(from_json(policy)) == _canonical(task)
    assert {s["Sid"] for s in policy["Statement"]} == {s.sid for s in task}
