"""What AWS authorises for each call the worker makes: the IAM action(s), the resource ARN and the
request context, as each service documents it (citations in docs/aws-semantics.md, "IAM").

A call is what tests/integration/calls.py records: service, operation, the parameters that name
resources, the HTTP status. :func:`requests` turns it into :class:`~tests.deploy.iam.Request`
objects for one :class:`Deployment`; an operation it does not know raises :class:`Unmapped`, so a
new kind of call fails the IAM check until someone writes down what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tests.deploy.hcl import Config
from tests.deploy.iam import (
    ALLOW,
    Policy,
    Request,
    Resolver,
    decide,
    from_terraform,
    grants,
    used_grants,
)

# The key every policy document of the module names for KMS (a stand-in ARN: no key exists offline).
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"


class Unmapped(Exception):
    """A call whose authorisation this module does not describe yet."""


@dataclass(frozen=True)
class Deployment:
    """The resources one worker uses, as the Terraform module would name them."""

    account: str
    region: str
    bucket: str
    queue_arn: str
    dlq_arn: str
    topic_arn: str
    collection_id: str
    reference_prefix: str
    upload_prefix: str
    result_prefix: str
    partition: str = "aws"
    # The module's CMK encrypts bucket, queues and topic; `worker setup` uses no CMK (None).
    kms_key_arn: str | None = KEY_ARN

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def collection_arn(self) -> str:
        return (
            f"arn:{self.partition}:rekognition:{self.region}:{self.account}"
            f":collection/{self.collection_id}"
        )

    def terraform_values(self) -> dict[str, str]:
        """Values for the module's references that only an apply knows (see iam.Resolver)."""
        return {
            "data.aws_caller_identity.current.account_id": self.account,
            "data.aws_partition.current.partition": self.partition,
            "data.aws_region.current.name": self.region,
            "aws_s3_bucket.this.arn": self.bucket_arn,
            "aws_sqs_queue.uploads.arn": self.queue_arn,
            "aws_sqs_queue.dlq.arn": self.dlq_arn,
            "aws_sns_topic.results.arn": self.topic_arn,
            "aws_kms_key.this.arn": self.kms_key_arn or KEY_ARN,
            "var.bucket_name": self.bucket,
            "var.collection_id": self.collection_id,
            "var.reference_prefix": self.reference_prefix,
            "var.upload_prefix": self.upload_prefix,
            "var.result_prefix": self.result_prefix,
        }

    @classmethod
    def from_environment(cls, env: Mapping[str, str], **overrides: Any) -> Deployment:
        """The deployment a worker process saw: its settings, with the worker's defaults."""
        from worker.settings import Settings

        def setting(name: str) -> str:
            return env.get(name.upper()) or str(Settings.model_fields[name].default)

        queue = queue_arn(env["QUEUE_URL"], env["AWS_REGION"])
        fields: dict[str, Any] = {
            "account": queue.split(":")[4],
            "region": env["AWS_REGION"],
            "bucket": env["BUCKET_NAME"],
            "queue_arn": queue,
            "dlq_arn": queue_arn(env["DLQ_URL"], env["AWS_REGION"]),
            "topic_arn": env["SNS_TOPIC_ARN"],
            "collection_id": setting("collection_id"),
            "reference_prefix": setting("reference_prefix"),
            "upload_prefix": setting("upload_prefix"),
            "result_prefix": setting("result_prefix"),
        }
        return cls(**(fields | overrides))


def queue_arn(url: str, region: str, partition: str = "aws") -> str:
    """A queue URL's ARN: ``https://sqs.<region>.amazonaws.com/<account>/<name>``."""
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


# ------------------------------------------------------------------------------- per service

MISSING = {"404", "NoSuchKey", "NotFound"}


def _object(dep: Deployment, bucket: str, key: str) -> str:
    return f"arn:{dep.partition}:s3:::{bucket}/{key}"


def _kms(dep: Deployment, *actions: str, why: str) -> list[Request]:
    if dep.kms_key_arn is None:
        return []
    return [Request(a, dep.kms_key_arn, why=why) for a in actions]


def _read_object(dep: Deployment, s3_object: Mapping[str, str], why: str) -> list[Request]:
    """HeadObject/GetObject, or Rekognition reading an S3Object in the caller's name."""
    bucket = s3_object.get("Bucket", "")
    key = s3_object.get("Key") or s3_object.get("Name", "")
    version = s3_object.get("VersionId") or s3_object.get("Version")
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    return [Request(action, _object(dep, bucket, key), why=why)]


def _s3(
    dep: Deployment, operation: str, params: Mapping[str, Any], call: Mapping[str, Any]
) -> list[Request]:
    bucket = params.get("Bucket", "")
    if operation in {"HeadObject", "GetObject"}:
        found = _read_object(dep, params, f"{operation} needs read (or version) permission")
        if str(call.get("error")) in MISSING:
            # S3 answers 404 for a missing key only to a caller allowed s3:ListBucket; the
            # s3:prefix S3 then evaluates is assumed to be the key (docs/aws-semantics.md).
            found.append(
                Request(
                    "s3:ListBucket",
                    f"arn:{dep.partition}:s3:::{bucket}",
                    {"s3:prefix": params.get("Key", "")},
                    why="a missing key answers 404 only with s3:ListBucket (else 403)",
                )
            )
        elif operation == "GetObject":
            found += _kms(dep, "kms:Decrypt", why="GetObject of an SSE-KMS object")
        return found
    if operation == "PutObject":
        return [
            Request("s3:PutObject", _object(dep, bucket, params.get("Key", "")), why="PutObject"),
            *_kms(dep, "kms:GenerateDataKey", why="PutObject into an SSE-KMS bucket"),
        ]
    if operation in {"ListObjectsV2", "ListObjects"}:
        context = {"s3:prefix": params["Prefix"]} if "Prefix" in params else {}
        return [
            Request("s3:ListBucket", f"arn:{dep.partition}:s3:::{bucket}", context, why=operation)
        ]
    raise Unmapped(f"s3:{operation}")


# "setting permissions for SendMessage, DeleteMessage, or ChangeMessageVisibility sets permissions
# for the corresponding batch versions of the actions" (SQS developer guide, batch actions).
_SQS = {
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "GetQueueUrl": "sqs:GetQueueUrl",
}


def _sqs(
    dep: Deployment, operation: str, params: Mapping[str, Any], _: Mapping[str, Any]
) -> list[Request]:
    if operation not in _SQS:
        raise Unmapped(f"sqs:{operation}")
    if operation == "GetQueueUrl":
        account = params.get("QueueOwnerAWSAccountId") or dep.account
        arn = f"arn:{dep.partition}:sqs:{dep.region}:{account}:{params['QueueName']}"
    else:
        arn = queue_arn(params["QueueUrl"], dep.region, dep.partition)
    found = [Request(_SQS[operation], arn, why=operation)]
    if _SQS[operation] == "sqs:SendMessage":
        found += _kms(dep, "kms:GenerateDataKey", "kms:Decrypt", why="sending to an SSE-KMS queue")
    if operation == "ReceiveMessage":
        found += _kms(dep, "kms:Decrypt", why="receiving from an SSE-KMS queue")
    return found


def _sns(
    dep: Deployment, operation: str, params: Mapping[str, Any], _: Mapping[str, Any]
) -> list[Request]:
    if operation == "GetTopicAttributes":
        return [Request("sns:GetTopicAttributes", params["TopicArn"], why=operation)]
    if operation != "Publish":
        raise Unmapped(f"sns:{operation}")
    return [
        Request("sns:Publish", params["TopicArn"], why="Publish"),
        *_kms(dep, "kms:GenerateDataKey", "kms:Decrypt", why="publishing to an SSE-KMS topic"),
    ]


# The Service Authorization Reference (list_amazonrekognition) lists no resource type for these:
# "If there is no value for this column, you must specify all resources ("*")". CreateCollection
# is one of them; the other collection calls have the required type collection*.
_REKOGNITION_WITHOUT_RESOURCE = {"DetectFaces", "CompareFaces", "CreateCollection"}
_REKOGNITION_COLLECTION = {
    "DescribeCollection",
    "DeleteFaces",
    "IndexFaces",
    "ListFaces",
    "SearchFacesByImage",
}


def _rekognition(
    dep: Deployment, operation: str, params: Mapping[str, Any], _: Mapping[str, Any]
) -> list[Request]:
    if operation in _REKOGNITION_WITHOUT_RESOURCE:
        found = [Request(f"rekognition:{operation}", "*", why=operation)]
    elif operation in _REKOGNITION_COLLECTION:
        collection = (
            f"arn:{dep.partition}:rekognition:{dep.region}:{dep.account}"
            f":collection/{params['CollectionId']}"
        )
        found = [Request(f"rekognition:{operation}", collection, why=operation)]
    else:
        raise Unmapped(f"rekognition:{operation}")
    # "For Amazon Rekognition to process an S3 object, the user must have permission to access the
    # S3 object" (Rekognition API reference, S3Object): read permission, and the key's Decrypt.
    for name in ("Image", "SourceImage", "TargetImage"):
        s3_object = (params.get(name) or {}).get("S3Object")
        if s3_object:
            why = f"Rekognition reads {name} from S3 as the caller"
            found += _read_object(dep, s3_object, why)
            found += _kms(dep, "kms:Decrypt", why=why)
    return found


_SERVICES: dict[str, Callable[..., list[Request]]] = {
    "s3": _s3,
    "sqs": _sqs,
    "sns": _sns,
    "rekognition": _rekognition,
}


def requests(call: Mapping[str, Any], dep: Deployment) -> list[Request]:
    """What AWS authorises for one recorded call of a worker deployed as ``dep``."""
    handler = _SERVICES.get(str(call["service"]))
    if handler is None:
        raise Unmapped(f"{call['service']}:{call['operation']}")
    return handler(dep, str(call["operation"]), call.get("params", {}), call)


def owned(dep: Deployment, request: Request) -> bool:
    """Whether ``request`` is on the deployment's own resources (not a foreign bucket, say)."""
    if request.resource == "*" or request.resource == dep.kms_key_arn:
        return True
    own = (
        dep.bucket_arn,
        f"{dep.bucket_arn}/",
        dep.queue_arn,
        dep.dlq_arn,
        dep.topic_arn,
        dep.collection_arn,
    )
    return any(
        request.resource == o or (o.endswith("/") and request.resource.startswith(o)) for o in own
    )


def terraform_policy(tf: Config, name: str, dep: Deployment) -> Policy:
    """``data "aws_iam_policy_document" "<name>"`` of the module, resolved for ``dep``."""
    return from_terraform(
        tf.data("aws_iam_policy_document")[name], Resolver(tf, dep.terraform_values())
    )


def terraform_grant(
    tf: Config, name: str, policy: Policy, grant: tuple[str, str, str]
) -> tuple[str, str, str]:
    """A resolved (Sid, action, resource) of :func:`iam.grants` as the Terraform writes it, the
    same for every deployment: (Sid, action, resource with its ``${...}`` references)."""
    sid, action, resource = grant
    (statement,) = [s for s in policy if s.sid == sid]
    (raw,) = [
        s for s in tf.data("aws_iam_policy_document")[name]["statement"] if s.get("sid") == sid
    ]
    return sid, action, raw["resources"][statement.resources.index(resource)]


@dataclass
class Verdict:
    """The IAM check of recorded calls against one of the module's policies."""

    problems: list[str]
    used: set[tuple[str, str, str]]  # grants (as the Terraform writes them) some call needed
    granted: set[tuple[str, str, str]]

    @property
    def unused(self) -> set[tuple[str, str, str]]:
        return self.granted - self.used


def judge(
    recorded: Iterable[tuple[Mapping[str, Any], list[Mapping[str, Any]]]],
    tf: Config,
    name: str = "task",
    marker: str = "",
) -> Verdict:
    """Every call of every recorded process (header, calls) against the module's policy ``name``
    resolved for that process's deployment. A problem: a call on the deployment's own resources
    the policy does not allow, a call :func:`requests` cannot map, a call without ``marker`` in
    its User-Agent. Requests on others' resources AWS would refuse are not the role's business."""
    verdict = Verdict([], set(), set())
    for process, calls in recorded:
        dep = Deployment.from_environment(process["env"])
        policy = terraform_policy(tf, name, dep)
        verdict.granted |= {terraform_grant(tf, name, policy, g) for g in grants(policy)}
        for call in calls:
            label = f"{call['service']}:{call['operation']} {call.get('params', {})}"
            if marker and not call.get("marked"):
                verdict.problems.append(f"no {marker!r} in the User-Agent of {label}")
            try:
                needed = requests(call, dep)
            except Unmapped as exc:
                verdict.problems.append(f"tests/deploy/authz.py does not map {exc}: {label}")
                continue
            for request in needed:
                if decide(policy, request) == ALLOW:
                    verdict.used |= {
                        terraform_grant(tf, name, policy, g) for g in used_grants(policy, request)
                    }
                elif owned(dep, request):
                    verdict.problems.append(
                        f"denied {request.action} on {request.resource} {dict(request.context)} "
                        f"({request.why}) for {label}"
                    )
    return verdict
