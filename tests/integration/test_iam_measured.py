"""IAM completeness, measured: every AWS call `worker run` made in this session is allowed by the
Terraform task role, and every permission the role grants was needed by some call.

Each worker subprocess of the integration tests records its calls (tests/integration/calls.py);
:func:`test_every_call_of_the_session_is_allowed_and_every_grant_used` judges them all with the
IAM semantics of tests/deploy/iam.py against the role's policy, resolved for that worker's own
bucket, queues, topic and prefixes (tests/deploy/authz.py says what each call needs).

Ordering: the conftest hook ``pytest_collection_modifyitems`` moves this module to the end of the
session, so it sees every worker that ran before it. It does not depend on them: it first runs a
deployment of its own, like the Terraform one (versioned bucket, DLQ_URL set), that exercises every
path the role is for; alone, or in any order, the check still covers the whole role.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from tests.deploy.authz import Deployment, judge, terraform_policy
from tests.deploy.hcl import MODULE, Config
from tests.deploy.iam import from_json
from tests.integration import calls
from tests.integration.harness import REGION, Stack, WorkerProcess, client
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, face_png
from worker.aws.clients import USER_AGENT
from worker.cli import main

pytestmark = pytest.mark.slow

StartWorker = Callable[..., WorkerProcess]
SLOW_KEY = "uploads/slow.png"

# Grants no measured call needs, each with the reason it stays: (Sid, action, resource as the
# Terraform writes it) -> why. Empty: the deployment above exercises every grant of the role
# (CreateCollection included: its collection starts missing).
UNUSED_GRANTS: dict[tuple[str, str, str], str] = {}


def _event(bucket: str, *keys: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
                }
                for key in keys
            ]
        }
    )


def _run_like_terraform(stack: Stack, start_worker: StartWorker, fake: FakeRekognition) -> None:
    """Every path of the task role: both strategies, versions, 404s, DLQ, retries, a split."""
    stack.s3.put_bucket_versioning(
        Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    stack.put("references/alice.png", face_png(ALICE))
    bob = stack.s3.put_object(Bucket=stack.bucket, Key="references/bob.png", Body=face_png(BOB))

    worker = start_worker(STRATEGY="collection")
    stack.put("uploads/alice.png", face_png(ALICE))  # CreateCollection, IndexFaces, Search...
    stack.put("uploads/nobody.png", face_png())  # no face
    stack.put("uploads/text.png", b"not an image")  # rejected
    assert {p.record["key"] for p in stack.published(3)} == {
        "uploads/alice.png",
        "uploads/nobody.png",
        "uploads/text.png",
    }
    stack.s3.delete_object(  # the version itself, not a delete marker: DeleteFaces later
        Bucket=stack.bucket, Key="references/bob.png", VersionId=bob["VersionId"]
    )
    stack.sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody=_event(stack.bucket, "uploads/alice.png")
    )
    stack.sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody=_event(stack.bucket, "uploads/never.png")
    )
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="not an S3 event")  # → DLQ
    worker.wait_for_log("upload_duplicate")
    worker.wait_for_log("upload_gone")  # HEAD of a missing upload: 404
    worker.wait_for_log("message_dead_lettered")
    stack.wait_drained()
    stack.put("uploads/bob.png", face_png(BOB))  # after the reference was removed
    assert stack.published(1)[0].record["status"] == "no_match"

    # Rekognition may not read this upload (as for a key it lacks): retried, then split off.
    fake.unreadable_keys = {SLOW_KEY}
    stack.put(SLOW_KEY, face_png(ALICE))
    worker.wait_for_log("message_retry_later", timeout=60)  # ChangeMessageVisibility
    bad = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket}}}
    body = json.loads(_event(stack.bucket, "uploads/alice.png", SLOW_KEY))
    body["Records"].insert(1, bad)
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(body))
    worker.wait_for_log("message_split", timeout=60)  # bad → DLQ, SLOW_KEY → back on the queue
    assert worker.terminate() == 0
    fake.unreadable_keys = set()

    compare = start_worker(STRATEGY="compare")
    stack.put("uploads/compare.png", face_png(ALICE))
    published = [
        p for p in stack.published(2, timeout=60) if p.record["key"] == "uploads/compare.png"
    ]
    assert published and published[0].record["matches"][0]["label"] == "alice"
    assert compare.terminate() == 0


def test_every_call_of_the_session_is_allowed_and_every_grant_used(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition, call_log: Path
) -> None:
    _run_like_terraform(stack, start_worker, fake_rekognition)

    verdict = judge(calls.processes(call_log), Config(MODULE), "task", marker=USER_AGENT)

    assert not verdict.problems, "\n".join(sorted(set(verdict.problems)))
    unexplained = verdict.unused - set(UNUSED_GRANTS)
    assert not unexplained, f"the task role grants what no call needed: {sorted(unexplained)}"


def test_worker_setup_writes_the_modules_queue_policy_and_the_task_role_but_for_the_key(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The manual path grants what the Terraform grants: the policy `worker setup` set on the
    queue (read back from SQS), and the policy it writes for `worker run` (--policy-file)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    bucket = f"setup-{uuid.uuid4().hex[:12]}"
    policy_file = tmp_path / "worker-policy.json"
    assert main(["setup", "--bucket", bucket, "--policy-file", str(policy_file)]) == 0
    out = capsys.readouterr().out
    exports = dict(shlex.split(line)[1].split("=", 1) for line in out.splitlines())
    dep = Deployment.from_environment(exports | {"AWS_REGION": REGION}, kms_key_arn=None)
    tf = Config(MODULE)

    sqs = client("sqs", moto_endpoint)
    written = sqs.get_queue_attributes(QueueUrl=exports["QUEUE_URL"], AttributeNames=["Policy"])
    queue_policy = from_json(json.loads(written["Attributes"]["Policy"]))
    assert {s.canonical() for s in queue_policy} == {
        s.canonical() for s in terraform_policy(tf, "queue", dep)
    }

    task = [s for s in terraform_policy(tf, "task", dep) if s.sid != "UseTheModuleKey"]
    worker = from_json(json.loads(policy_file.read_text()))
    assert {s.canonical() for s in worker} == {s.canonical() for s in task}
