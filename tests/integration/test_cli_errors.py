"""Every verb, in a subprocess, against each AWS misconfiguration a user meets first (issue 12):
no region, no credentials, an unreachable endpoint, a malformed endpoint URL, credentials AWS
rejects, a denied call. Each gives exactly one line on stderr naming the cause and the fix, exit 2
for configuration and 1 at run time, and never a traceback.

AWS's refusals come from :class:`Refusing`, a loopback server that answers every request with one
error in the form its protocol expects (JSON for SQS and Rekognition, query XML for SNS and STS,
REST XML for S3), since moto accepts any credentials and allows every call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.harness import cli
from worker.settings import Settings

pytestmark = pytest.mark.slow

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = {"AWS_REGION": "us-east-1"}
# name -> (AWS variables, exit code, what the line says)
MISCONFIGURATIONS: dict[str, tuple[dict[str, str], int, str]] = {
    "no region": (CREDENTIALS, 2, "no AWS region: set AWS_REGION"),
    "no credentials": (REGION, 2, "no AWS credentials: set AWS_ACCESS_KEY_ID"),
    "unreachable endpoint": (
        {**REGION, **CREDENTIALS},
        1,
        f"cannot reach {UNREACHABLE} (EndpointConnectionError): start it or fix AWS_ENDPOINT_URL",
    ),
    "malformed endpoint URL": (
        {**REGION, **CREDENTIALS, "AWS_ENDPOINT_URL": "not-a-url"},
        2,
        "Invalid endpoint: not-a-url: set AWS_ENDPOINT_URL",
    ),
}
VERBS = {
    "run": ["run"],
    "references list": ["references", "list"],
    "references sync": ["references", "sync"],
    "dlq list": ["dlq", "list"],
    "dlq redrive": ["dlq", "redrive"],
    "dlq purge": ["dlq", "purge", "--yes"],
    "setup": ["setup", "--bucket", "bucket-abc"],
}
# What AWS answers (code, HTTP status) -> exit code and what the line says, for a few verbs.
REFUSALS: dict[str, tuple[str, int, int, str]] = {
    "rejected credentials": (
        "InvalidClientTokenId",
        403,
        2,
        "AWS rejected the credentials (InvalidClientTokenId): check AWS_ACCESS_KEY_ID",
    ),
    "access denied": ("AccessDenied", 403, 1, "access denied: "),
}
REFUSED_VERBS = ("references list", "dlq list", "setup")


class Refusing(ThreadingHTTPServer):
    """Answers every AWS request with the error ``code`` and HTTP ``status``."""

    daemon_threads = True

    def __init__(self, code: str, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Refuse)
        self.code, self.status = code, status
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Refuse(BaseHTTPRequestHandler):
    server: Refusing

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        code = self.server.code
        if self.headers.get("X-Amz-Target"):  # JSON protocol: SQS, Rekognition
            payload = json.dumps({"__type": code, "message": f"refused: {code}"}).encode()
        elif b"Action=" in body:  # query protocol: SNS, STS
            payload = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>refused: {code}</Message></Error><RequestId>r</RequestId>"
                "</ErrorResponse>"
            ).encode()
        else:  # S3 (a HEAD has no body: its code is the status)
            payload = (
                f"<Error><Code>{code}</Code><Message>refused: {code}</Message></Error>".encode()
            )
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, *_: object) -> None:
        pass


def environment(cwd: Path, endpoint: str, **aws: str) -> dict[str, str]:
    """No AWS variable nor worker setting of the test run's own; the three the verbs need."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PYTEST_", "COV_")) and k.upper() not in settings
    }
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=endpoint,
        BUCKET_NAME="bucket-abc",
        QUEUE_URL=f"{endpoint}/123456789012/uploads",
        DLQ_URL=f"{endpoint}/123456789012/uploads-dlq",
        SNS_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:results",
        HEALTH_FILE=str(cwd / "no-heartbeat"),
    )
    env.update(aws)
    return env


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str], subprocess.CompletedProcess[str]]]:
    """Every case at once, four subprocesses at a time (most of their time is start-up)."""
    cwd = tmp_path_factory.mktemp("cli-errors")
    servers = {name: Refusing(code, status) for name, (code, status, _, _) in REFUSALS.items()}
    cases: dict[tuple[str, str], tuple[list[str], dict[str, str]]] = {}
    for name, (aws, _, _) in MISCONFIGURATIONS.items():
        for verb, argv in VERBS.items():
            cases[verb, name] = (argv, environment(cwd, UNREACHABLE, **aws))
    for name, server in servers.items():
        for verb in (*REFUSED_VERBS, "run"):
            env = environment(cwd, server.endpoint, **REGION, **CREDENTIALS)
            cases[verb, name] = (VERBS[verb], env)
    with ThreadPoolExecutor(4) as pool:
        futures = {
            key: pool.submit(cli, *argv, env=env, cwd=cwd) for key, (argv, env) in cases.items()
        }
        yield {key: future.result() for key, future in futures.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""
    return lines[0]


@pytest.mark.parametrize("misconfiguration", MISCONFIGURATIONS)
@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_names_the_misconfiguration_in_one_line(
    outcomes: dict[tuple[str, str], subprocess.CompletedProcess[str]],
    verb: str,
    misconfiguration: str,
) -> None:
    proc = outcomes[verb, misconfiguration]
    _, code, says = MISCONFIGURATIONS[misconfiguration]
    line = one_line(proc)
    assert proc.returncode == code, line
    assert line.startswith(f"worker: {says}"), line


@pytest.mark.parametrize("refusal", REFUSALS)
@pytest.mark.parametrize("verb", REFUSED_VERBS)
def test_what_aws_refuses_is_one_line_too(
    outcomes: dict[tuple[str, str], subprocess.CompletedProcess[str]], verb: str, refusal: str
) -> None:
    proc = outcomes[verb, refusal]
    *_, code, says = REFUSALS[refusal]
    line = one_line(proc)
    assert proc.returncode == code, line
    assert line.startswith(f"worker: {says}"), line


def test_run_refused_everywhere_names_each_resource_and_exits_2(
    outcomes: dict[tuple[str, str], subprocess.CompletedProcess[str]],
) -> None:
    proc = outcomes["run", "access denied"]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [line.split(":")[2].strip() for line in proc.stderr.splitlines()] == [
        "QUEUE_URL",
        "DLQ_URL",
        "BUCKET_NAME",
        "SNS_TOPIC_ARN",
    ], proc.stderr
    assert all("access denied to" in line for line in proc.stderr.splitlines())
    rejected = one_line(outcomes["run", "rejected credentials"])
    assert outcomes["run", "rejected credentials"].returncode == 2
    assert "AWS rejected the credentials" in rejected


def test_health_needs_no_aws(tmp_path: Path) -> None:
    env = environment(tmp_path, "not-a-url")  # no region, no credentials, a bad endpoint
    proc = cli("health", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"unhealthy: no heartbeat at {tmp_path / 'no-heartbeat'}\n"


def test_demo_and_embedded_bring_their_own_aws(tmp_path: Path) -> None:
    """Neither reads the environment's AWS: they run whatever it says (here: no region, no
    credentials, an unreachable endpoint)."""
    env = environment(tmp_path, UNREACHABLE)
    embedded = subprocess.Popen(
        [sys.executable, "-m", "worker", "embedded", "--port", "0"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert embedded.stdout is not None
        assert embedded.stdout.readline().startswith("export AWS_"), embedded.stderr
        embedded.send_signal(signal.SIGTERM)
        assert embedded.wait(timeout=20) == 0
    finally:
        embedded.kill()
    assert embedded.stderr is not None
    assert "Traceback" not in embedded.stderr.read()
    demo = cli("demo", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
