"""The documents `worker setup` writes, built by pure functions: no AWS here."""

from __future__ import annotations

import json

import pytest

from worker.errors import ConfigError
from worker.ops.wiring import (
    REFERENCES_NOTIFICATION_ID,
    UPLOADS_NOTIFICATION_ID,
    attribute_changes,
    create_bucket_args,
    default_base_name,
    notification_configuration,
    notification_is_current,
    plan,
    queue_policy,
    redrive_policy,
)

QUEUE = "arn:aws:sqs:eu-west-1:111122223333:photos-uploads"
BUCKET = "arn:aws:s3:::photos"


def _prefixes(config: dict[str, object]) -> dict[str, tuple[str, str, list[str]]]:
    found = {}
    for entry in config["QueueConfigurations"]:  # type: ignore[attr-defined]
        (rule,) = entry["Filter"]["Key"]["FilterRules"]
        found[entry["Id"]] = (rule["Value"], entry["QueueArn"], entry["Events"])
    return found


def test_queue_policy_lets_only_this_bucket_of_this_account_send() -> None:
    policy = queue_policy(QUEUE, BUCKET, "111122223333")
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == QUEUE
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": BUCKET},
        "StringEquals": {"aws:SourceAccount": "111122223333"},
    }
    json.dumps(policy)  # serialisable as the Policy attribute


def test_queue_policy_keeps_other_statements_and_replaces_its_own() -> None:
    other = {"Sid": "Other", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}
    first = queue_policy(QUEUE, BUCKET, "111122223333", {"Id": "mine", "Statement": [other]})
    again = queue_policy(QUEUE, BUCKET, "111122223333", first)
    assert again == first
    assert again["Id"] == "mine"
    assert [s.get("Sid") for s in again["Statement"]] == ["Other", "FaceMatchBucketSendsEvents"]


def test_notification_sends_uploads_and_reference_changes_to_the_queue() -> None:
    config = notification_configuration(
        {}, QUEUE, upload_prefix="uploads/", reference_prefix="references/"
    )
    assert _prefixes(config) == {
        UPLOADS_NOTIFICATION_ID: ("uploads/", QUEUE, ["s3:ObjectCreated:*"]),
        REFERENCES_NOTIFICATION_ID: (
            "references/",
            QUEUE,
            ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        ),
    }


def test_notification_merges_with_the_existing_configuration() -> None:
    existing = {
        "ResponseMetadata": {"HTTPStatusCode": 200},
        "TopicConfigurations": [{"Id": "audit", "TopicArn": "arn:t", "Events": ["s3:*"]}],
        "QueueConfigurations": [
            {"Id": "other-app", "QueueArn": "arn:other", "Events": ["s3:ObjectCreated:*"]},
            # The same wiring made by hand under another id: replaced, S3 refuses overlaps.
            {
                "Id": "by-hand",
                "QueueArn": QUEUE,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "uploads/"}]}},
            },
            # An older version of ours: replaced.
            {"Id": UPLOADS_NOTIFICATION_ID, "QueueArn": QUEUE, "Events": ["s3:ObjectCreated:Put"]},
        ],
        "EventBridgeConfiguration": {},
    }
    merged = notification_configuration(
        existing, QUEUE, upload_prefix="uploads/", reference_prefix="references/"
    )
    assert "ResponseMetadata" not in merged
    assert merged["TopicConfigurations"] == existing["TopicConfigurations"]
    assert merged["EventBridgeConfiguration"] == {}
    ids = [entry["Id"] for entry in merged["QueueConfigurations"]]
    assert ids == ["other-app", UPLOADS_NOTIFICATION_ID, REFERENCES_NOTIFICATION_ID]


def test_notification_is_current_ignores_filter_rule_case_and_other_entries() -> None:
    config = notification_configuration(
        {}, QUEUE, upload_prefix="uploads/", reference_prefix="references/"
    )
    for entry in config["QueueConfigurations"]:
        entry["Filter"]["Key"]["FilterRules"][0]["Name"] = "Prefix"  # as S3 returns it
    config["QueueConfigurations"].insert(0, {"Id": "x", "QueueArn": "arn:x", "Events": []})
    kwargs = {"upload_prefix": "uploads/", "reference_prefix": "references/"}
    assert notification_is_current(config, QUEUE, **kwargs)
    assert not notification_is_current(
        config, QUEUE, upload_prefix="new/", reference_prefix="references/"
    )
    assert not notification_is_current({}, QUEUE, **kwargs)


def test_redrive_policy() -> None:
    assert redrive_policy("arn:dlq") == {"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 5}


def test_create_bucket_args_depend_on_the_region() -> None:
    assert create_bucket_args("b", "us-east-1") == {"Bucket": "b"}
    assert create_bucket_args("b", "eu-west-1") == {
        "Bucket": "b",
        "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"},
    }


def test_attribute_changes_compares_json_values_parsed() -> None:
    current = {"RedrivePolicy": '{"maxReceiveCount":"5","deadLetterTargetArn":"a"}', "X": "1"}
    wanted = {
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": "a", "maxReceiveCount": "5"}),
        "X": "2",
        "Y": "3",
    }
    assert attribute_changes(current, wanted) == {"X": "2", "Y": "3"}


def test_plan_defaults_from_the_bucket_name() -> None:
    request = plan("my.photos")
    assert default_base_name("my.photos") == "my-photos"
    assert (request.queue_name, request.dlq_name, request.topic_name) == (
        "my-photos-uploads",
        "my-photos-uploads-dlq",
        "my-photos-results",
    )
    long = plan("b" * 63, queue_name="q" * 80)
    assert len(long.dlq_name) == 80


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"upload_prefix": "results/"}, "UPLOAD_PREFIX and RESULT_PREFIX overlap"),
        ({"result_prefix": "uploads/done/"}, "UPLOAD_PREFIX and RESULT_PREFIX overlap"),
        ({"reference_prefix": ""}, "REFERENCE_PREFIX: must not be empty"),
        ({"queue_name": "no.dots"}, "--queue-name"),
        ({"emails": ["not-an-address"]}, "--email"),
    ],
)
def test_plan_refuses_wiring_that_would_loop_or_fail(
    kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        plan("photos", **kwargs)  # type: ignore[arg-type]
    assert any(problem in line for line in raised.value.problems), raised.value.problems


def test_plan_refuses_a_bad_bucket_name() -> None:
    with pytest.raises(ConfigError, match="--bucket"):
        plan("Not_A_Bucket")
