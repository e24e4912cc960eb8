"""Structural tests of the Terraform module: the wiring the worker depends on, read with
python-hcl2 (no provider, no plan). fmt and checkov run in deploy/check.sh."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.hcl import EXAMPLE, MODULE, Config, one
from worker.settings import Settings


@pytest.fixture(scope="module")
def tf() -> Config:
    return Config(MODULE)


@pytest.fixture(scope="module")
def example() -> Config:
    return Config(EXAMPLE)


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = doc.get("statement", [])
    return statements


def _all_policy_statements(tf: Config) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, statement)
        for name, doc in tf.data("aws_iam_policy_document").items()
        for statement in _statements(doc)
    ]


def _default(tf: Config, variable: str) -> Any:
    return tf.variables[variable]["default"]


# --- bucket → queue ------------------------------------------------------------------------


def test_upload_notification_goes_to_the_queue_filtered_on_the_upload_prefix(tf: Config) -> None:
    notification = tf.resource("aws_s3_bucket_notification", "this")
    by_prefix = {q["filter_prefix"]: q for q in notification["queue"]}

    uploads = by_prefix["${var.upload_prefix}"]
    assert uploads["queue_arn"] == "${aws_sqs_queue.uploads.arn}"
    assert uploads["events"] == ["s3:ObjectCreated:*"]
    assert _default(tf, "upload_prefix") == "uploads/"


def test_reference_changes_go_to_the_same_queue(tf: Config) -> None:
    notification = tf.resource("aws_s3_bucket_notification", "this")
    by_prefix = {q["filter_prefix"]: q for q in notification["queue"]}

    references = by_prefix["${var.reference_prefix}"]
    assert references["queue_arn"] == "${aws_sqs_queue.uploads.arn}"
    assert set(references["events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_results_are_never_notified(tf: Config) -> None:
    notification = tf.resource("aws_s3_bucket_notification", "this")
    assert set(notification) & {"lambda_function", "topic"} == set()
    assert all("result" not in q["filter_prefix"] for q in notification["queue"])
    assert all(q.get("filter_prefix") for q in notification["queue"]), "unfiltered notification"


def test_queue_policy_admits_only_this_bucket_of_this_account(tf: Config) -> None:
    policy = tf.resource("aws_sqs_queue_policy", "uploads")
    assert policy["queue_url"] == "${aws_sqs_queue.uploads.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.queue.json}"

    (statement,) = _statements(tf.data("aws_iam_policy_document")["queue"])
    assert statement["effect"] == "Allow"
    assert statement["actions"] == ["sqs:SendMessage"]
    assert one(statement["principals"])["identifiers"] == ["s3.amazonaws.com"]
    conditions = {c["variable"]: c for c in statement["condition"]}
    assert conditions["aws:SourceArn"]["values"] == ["${local.bucket_arn}"]
    assert conditions["aws:SourceAccount"]["values"] == ["${local.account_id}"]
    assert tf.locals["bucket_arn"] == "${aws_s3_bucket.this.arn}"


def test_bucket_is_versioned_encrypted_private_and_tls_only(tf: Config) -> None:
    versioning = tf.resource("aws_s3_bucket_versioning", "this")
    assert one(versioning["versioning_configuration"])["status"] == "Enabled"

    sse = one(tf.resource("aws_s3_bucket_server_side_encryption_configuration", "this")["rule"])
    assert one(sse["apply_server_side_encryption_by_default"])["sse_algorithm"] == "aws:kms"

    block = tf.resource("aws_s3_bucket_public_access_block", "this")
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[flag] is True, flag

    (deny,) = _statements(tf.data("aws_iam_policy_document")["bucket"])
    assert deny["effect"] == "Deny"
    condition = one(deny["condition"])
    assert (condition["variable"], condition["values"]) == ("aws:SecureTransport", ["false"])


# --- queue, DLQ, visibility ----------------------------------------------------------------


def test_redrive_to_the_dlq_after_five_receives(tf: Config) -> None:
    queue = tf.resource("aws_sqs_queue", "uploads")
    redrive = queue["redrive_policy"].replace(" ", "")
    assert "deadLetterTargetArn=aws_sqs_queue.dlq.arn" in redrive
    assert "maxReceiveCount=var.max_receive_count" in redrive
    assert _default(tf, "max_receive_count") == 5

    dlq = tf.resource("aws_sqs_queue", "dlq")
    assert dlq["message_retention_seconds"] == 14 * 24 * 3600


def test_queues_and_topics_are_encrypted(tf: Config) -> None:
    for name, queue in tf.resources("aws_sqs_queue").items():
        assert queue.get("kms_master_key_id") or queue.get("sqs_managed_sse_enabled"), name
    for name, topic in tf.resources("aws_sns_topic").items():
        assert topic.get("kms_master_key_id"), name


def test_visibility_timeout_is_six_times_the_longest_upload(tf: Config) -> None:
    queue = tf.resource("aws_sqs_queue", "uploads")
    assert queue["visibility_timeout_seconds"] == "${local.visibility_timeout_seconds}"
    expression = tf.locals["visibility_timeout_seconds"].replace(" ", "")
    assert "6*ceil(var.max_upload_seconds)" in expression
    assert "min(43200," in expression  # SQS's 12-hour limit


def test_dlq_alarm_notifies_the_ops_topic(tf: Config) -> None:
    alarm = tf.resource("aws_cloudwatch_metric_alarm", "dlq_not_empty")
    assert alarm["dimensions"] == {"QueueName": "${aws_sqs_queue.dlq.name}"}
    assert alarm["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["alarm_actions"] == ["${aws_sns_topic.ops.arn}"]


def test_email_subscriptions_come_from_a_variable(tf: Config) -> None:
    subscription = tf.resource("aws_sns_topic_subscription", "results_email")
    assert subscription["for_each"] == "${toset(var.notification_emails)}"
    assert subscription["protocol"] == "email"
    assert subscription["topic_arn"] == "${aws_sns_topic.results.arn}"


# --- scaling -------------------------------------------------------------------------------


def _metrics(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    configuration = one(policy["target_tracking_scaling_policy_configuration"])
    specification = one(configuration["customized_metric_specification"])
    return {m["id"]: m for m in specification["metrics"]}


def test_target_tracking_on_backlog_per_task_of_the_upload_queue(tf: Config) -> None:
    policy = tf.resource("aws_appautoscaling_policy", "backlog_per_task")
    assert policy["policy_type"] == "TargetTrackingScaling"
    assert policy["resource_id"] == "${aws_appautoscaling_target.worker.resource_id}"

    metrics = _metrics(policy)
    visible = one(one(metrics["visible"]["metric_stat"])["metric"])
    assert (visible["namespace"], visible["metric_name"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert visible["dimensions"] == [
        {"name": "QueueName", "value": "${aws_sqs_queue.uploads.name}"}
    ]

    tasks = one(one(metrics["tasks"]["metric_stat"])["metric"])
    assert (tasks["namespace"], tasks["metric_name"]) == (
        "ECS/ContainerInsights",
        "RunningTaskCount",
    )
    assert {d["name"]: d["value"] for d in tasks["dimensions"]} == {
        "ClusterName": "${aws_ecs_cluster.this.name}",
        "ServiceName": "${aws_ecs_service.worker.name}",
    }

    returned = [m for m in metrics.values() if m["return_data"]]
    assert [m.get("expression") for m in returned] == ["visible / tasks"]

    configuration = one(policy["target_tracking_scaling_policy_configuration"])
    assert configuration["target_value"] == "${local.backlog_per_task_target}"
    target = tf.locals["backlog_per_task_target"].replace(" ", "")
    assert target == "${var.acceptable_latency_seconds/var.seconds_per_upload}"


def test_scaling_target_is_the_service_with_min_and_max_variables(tf: Config) -> None:
    target = tf.resource("aws_appautoscaling_target", "worker")
    assert target["resource_id"] == (
        "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
    )
    assert target["min_capacity"] == "${var.min_tasks}"
    assert target["max_capacity"] == "${var.max_tasks}"
    assert _default(tf, "min_tasks") == 0  # scale to zero allowed
    service = tf.resource("aws_ecs_service", "worker")
    assert "desired_count" in one(service["lifecycle"])["ignore_changes"][0]


def test_a_step_policy_starts_the_first_task_when_uploads_wait(tf: Config) -> None:
    policy = tf.resource("aws_appautoscaling_policy", "start_from_zero")
    assert policy["policy_type"] == "StepScaling"
    step = one(one(policy["step_scaling_policy_configuration"])["step_adjustment"])
    assert step["scaling_adjustment"] == 1

    alarm = tf.resource("aws_cloudwatch_metric_alarm", "work_waiting_no_task")
    assert alarm["alarm_actions"] == ["${aws_appautoscaling_policy.start_from_zero.arn}"]
    queries = {q["id"]: q for q in alarm["metric_query"]}
    assert one(queries["visible"]["metric"])["dimensions"] == {
        "QueueName": "${aws_sqs_queue.uploads.name}"
    }
    assert one(queries["tasks"]["metric"])["metric_name"] == "RunningTaskCount"


# --- IAM -----------------------------------------------------------------------------------


def _is_account_key_administration(name: str, statement: dict[str, Any]) -> bool:
    """AWS's default key policy statement ("Enable IAM User Permissions")."""
    return (
        name == "kms"
        and statement["actions"] == ["kms:*"]
        and one(statement["principals"])["identifiers"]
        == ["arn:${local.partition}:iam::${local.account_id}:root"]
    )


def test_no_wildcard_action_in_any_allow_but_the_default_key_policy(tf: Config) -> None:
    for name, statement in _all_policy_statements(tf):
        actions = statement.get("actions", [])
        assert actions, f"{name}: statement without actions"
        assert "not_actions" not in statement, name
        if statement["effect"] == "Allow" and not _is_account_key_administration(name, statement):
            assert not [a for a in actions if "*" in a], f"{name}: wildcard action {actions}"


# Cryptographic use of a key, as the services' statements may grant (nothing that administers it).
KEY_USE = re.compile(r"kms:(Decrypt|DescribeKey|Encrypt|GenerateDataKey|ReEncrypt(From|To))")


def test_key_policy_is_the_default_for_the_account_and_least_privilege_for_services(
    tf: Config,
) -> None:
    """kms:* for the account, as AWS's default key policy: the alias (CreateAlias, UpdateAlias,
    DeleteAlias on the key), rotation, deletion and the task role's IAM grants all depend on it.
    Services get named actions, and only for this account (docs/aws-semantics.md, "KMS")."""
    statements = _statements(tf.data("aws_iam_policy_document")["kms"])
    accounts = [s for s in statements if one(s["principals"])["type"] == "AWS"]
    assert len(accounts) == 1 and _is_account_key_administration("kms", accounts[0])
    assert accounts[0]["resources"] == ["*"] and "condition" not in accounts[0]
    for statement in statements:
        if statement in accounts:
            continue
        assert one(statement["principals"])["type"] == "Service", statement["sid"]
        uses = [a for a in statement["actions"] if KEY_USE.fullmatch(a)]
        assert uses == statement["actions"], f"{statement['sid']}: more than using the key"
        assert statement["condition"], f"{statement['sid']}: a service statement without condition"
    alias = tf.resource("aws_kms_alias", "this")
    assert alias["target_key_id"] == "${aws_kms_key.this.key_id}"


def test_every_checkov_skip_says_why(tf: Config) -> None:
    for name in tf.files:
        for line in (MODULE / name).read_text().splitlines():
            if "checkov:skip=" in line:
                check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
                assert check.startswith("CKV_") and len(reason.strip()) > 20, f"{name}: {line}"


def test_the_only_wildcard_deny_is_the_tls_guard(tf: Config) -> None:
    for name, statement in _all_policy_statements(tf):
        if statement["effect"] == "Deny" and any("*" in a for a in statement["actions"]):
            condition = one(statement["condition"])
            assert condition["variable"] == "aws:SecureTransport", name
            assert condition["values"] == ["false"], name


def test_no_managed_or_inline_policy_outside_the_reviewed_documents(tf: Config) -> None:
    assert not tf.resources("aws_iam_role_policy_attachment")
    assert not tf.resources("aws_iam_policy_attachment")
    for name, role in tf.resources("aws_iam_role").items():
        assert "managed_policy_arns" not in role, name
        assert role["assume_role_policy"].startswith("${data.aws_iam_policy_document."), name
    for name, policy in tf.resources("aws_iam_role_policy").items():
        assert policy["policy"] == f"${{data.aws_iam_policy_document.{name}.json}}", name
    text = "\n".join((MODULE / f).read_text() for f in tf.files)
    assert "FullAccess" not in text


def _task_statements(tf: Config) -> list[dict[str, Any]]:
    return _statements(tf.data("aws_iam_policy_document")["task"])


S3_WRITE = re.compile(r"^s3:(Put|Delete|Restore|Replicate|Abort|Create|Update)")


def test_task_role_writes_to_s3_only_under_the_result_prefix(tf: Config) -> None:
    writes = [s for s in _task_statements(tf) if any(S3_WRITE.match(a) for a in s["actions"])]
    assert writes, "the worker must be able to write its results"
    for statement in writes:
        assert [a for a in statement["actions"] if a.startswith("s3:")] == ["s3:PutObject"]
        assert statement["resources"] == ["${local.bucket_arn}/${var.result_prefix}*"]


def test_task_role_reads_its_prefixes_versions_of_uploads_and_lists_its_prefixes(
    tf: Config,
) -> None:
    reads = [s for s in _task_statements(tf) if "s3:GetObject" in s["actions"]]
    assert len(reads) == 1
    assert reads[0]["actions"] == ["s3:GetObject"]
    assert sorted(reads[0]["resources"]) == sorted(
        f"${{local.bucket_arn}}/${{var.{p}_prefix}}*" for p in ("reference", "upload", "result")
    )
    (versions,) = [s for s in _task_statements(tf) if "s3:GetObjectVersion" in s["actions"]]
    assert versions["resources"] == ["${local.bucket_arn}/${var.upload_prefix}*"]
    # S3 answers a missing key with 404 only to a caller that may list (else 403): the record
    # look-up (results/) and a deleted upload (uploads/) need it, as does the reference listing.
    (listing,) = [s for s in _task_statements(tf) if "s3:ListBucket" in s["actions"]]
    assert listing["resources"] == ["${local.bucket_arn}"]
    condition = one(listing["condition"])
    assert (condition["test"], condition["variable"]) == ("StringLike", "s3:prefix")
    assert sorted(condition["values"]) == sorted(
        f"${{var.{p}_prefix}}*" for p in ("reference", "upload", "result")
    )


def test_task_role_rekognition_calls_are_named_and_scoped(tf: Config) -> None:
    rekognition = [s for s in _task_statements(tf) if s["actions"][0].startswith("rekognition:")]
    granted = {a for s in rekognition for a in s["actions"]}
    assert granted == {
        "rekognition:CompareFaces",
        "rekognition:CreateCollection",
        "rekognition:DeleteFaces",
        "rekognition:DescribeCollection",
        "rekognition:DetectFaces",
        "rekognition:IndexFaces",
        "rekognition:ListFaces",
        "rekognition:SearchFacesByImage",
    }
    for statement in rekognition:
        if statement["resources"] == ["*"]:
            # The calls without a Rekognition resource type (Service Authorization Reference).
            assert set(statement["actions"]) == {
                "rekognition:CompareFaces",
                "rekognition:CreateCollection",
                "rekognition:DetectFaces",
            }
        else:
            assert statement["resources"] == ["${local.collection_arn}"]


def test_task_role_queue_dlq_and_topic_permissions(tf: Config) -> None:
    by_resource = {tuple(s["resources"]): set(s["actions"]) for s in _task_statements(tf)}
    assert by_resource[("${aws_sqs_queue.uploads.arn}",)] == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",  # the redrive policy's maxReceiveCount
        "sqs:SendMessage",  # the records of a split message, sent back one by one
    }
    # GetQueueAttributes / GetTopicAttributes: `worker run`'s readiness check at start.
    assert by_resource[("${aws_sqs_queue.dlq.arn}",)] == {
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    }
    assert by_resource[("${aws_sns_topic.results.arn}",)] == {
        "sns:GetTopicAttributes",
        "sns:Publish",
    }


# --- task definition -------------------------------------------------------------------------

CONTRACT_VARIABLES = {
    "BUCKET_NAME",
    "SNS_TOPIC_ARN",
    "QUEUE_URL",
    "DLQ_URL",
    "REFERENCE_PREFIX",
    "UPLOAD_PREFIX",
    "RESULT_PREFIX",
    "SIMILARITY_THRESHOLD",
    "STRATEGY",
    "CONCURRENCY",
    "REKOGNITION_MAX_TPS",
}


def _environment_names(tf: Config) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", tf.locals["container_environment"]))


def test_container_environment_names_match_the_contract(tf: Config) -> None:
    names = _environment_names(tf)
    assert names >= CONTRACT_VARIABLES | {"AWS_REGION"}
    boto3 = {"AWS_REGION", "AWS_DEFAULT_REGION"}
    known = {field.upper() for field in Settings.model_fields} | boto3
    assert names <= known, f"not a worker setting: {names - known}"


def _container(tf: Config) -> str:
    definition: str = tf.resource("aws_ecs_task_definition", "worker")["container_definitions"]
    return definition.replace(" ", "")


def test_container_stops_within_the_workers_grace_period(tf: Config) -> None:
    assert "stopTimeout=local.stop_timeout_seconds" in _container(tf)
    stop_timeout = tf.locals["stop_timeout_seconds"]
    grace = Settings.model_fields["shutdown_grace_seconds"].default
    assert grace < stop_timeout <= 120  # 120 s: Fargate's maximum stopTimeout


def test_container_health_check_and_read_only_root(tf: Config) -> None:
    container = _container(tf)
    assert 'command=["CMD","worker","health"]' in container
    assert "readonlyRootFilesystem=true" in container
    assert 'containerPath="/tmp"' in container
    assert 'logDriver="awslogs"' in container
    task = tf.resource("aws_ecs_task_definition", "worker")
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert (task["cpu"], task["memory"]) == (
        "${tostring(var.task_cpu)}",
        "${tostring(var.task_memory)}",
    )
    assert one(task["volume"])["name"] == "tmp"


def test_service_runs_in_private_subnets_with_https_egress_only(tf: Config) -> None:
    service = tf.resource("aws_ecs_service", "worker")
    network = one(service["network_configuration"])
    assert network["subnets"] == "${var.private_subnet_ids}"
    assert network["assign_public_ip"] is False

    group = tf.resource("aws_security_group", "worker")
    assert "ingress" not in group
    (egress,) = group["egress"]
    assert (egress["from_port"], egress["to_port"], egress["protocol"]) == (443, 443, "tcp")


def test_ecr_scans_on_push_with_immutable_tags(tf: Config) -> None:
    repository = tf.resource("aws_ecr_repository", "this")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert one(repository["image_scanning_configuration"])["scan_on_push"] is True


def test_cluster_has_container_insights(tf: Config) -> None:
    setting = one(tf.resource("aws_ecs_cluster", "this")["setting"])
    assert (setting["name"], setting["value"]) == ("containerInsights", "enabled")


# --- interface -----------------------------------------------------------------------------


def test_outputs(tf: Config, example: Config) -> None:
    wanted = {
        "bucket_name",
        "queue_url",
        "dlq_url",
        "sns_topic_arn",
        "cluster_name",
        "service_name",
        "ecr_repository_url",
    }
    assert wanted <= set(tf.outputs)
    assert wanted <= set(example.outputs)
    for name, output in tf.outputs.items():
        assert output.get("description"), name


def test_every_variable_is_described_and_typed(tf: Config) -> None:
    for name, variable in tf.variables.items():
        assert variable.get("description"), name
        assert variable.get("type"), name
    validated = [n for n, v in tf.variables.items() if v.get("validation")]
    assert len(validated) >= len(tf.variables) - 3


def test_example_uses_the_module_with_its_required_variables(tf: Config, example: Config) -> None:
    (module,) = example.modules.values()
    assert module["source"] == "../../modules/face-match-worker"
    required = {n for n, v in tf.variables.items() if "default" not in v}
    assert required <= set(module), required - set(module)
