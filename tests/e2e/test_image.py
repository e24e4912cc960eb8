"""The production image, built and run for real: Debian's docker.io engine (installed with apt
when missing), started for this module only (data root in a temporary folder; no iptables, no
IP forwarding or masquerading, no bridge: the host's network is left alone), a base image made
with debootstrap instead of pulling python:3.11-slim-bookworm (no registry is reachable; the
Dockerfile's default stays), `DOCKER_BUILDKIT=0 docker build --network=host`.

Then, as ECS runs it: `--help`; `health` before the first poll; the user; a read-only root with
/tmp on tmpfs; an upload end to end against `worker embedded` on the host network; Docker's
health status turning healthy; `docker stop` ending in exit code 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ROOT, EmbeddedProcess, run_script, stop_process, tail
from tests.integration.harness import Stack

# First run on a fresh machine: apt (~20 s), debootstrap (~1 min), build (~30 s).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BASE_TAG = "localbase/python:3.11-bookworm"
IMAGE = "face-match-worker:e2e"
CONTAINER = "face-match-e2e"
TIMINGS: dict[str, float] = {}


@dataclass
class Docker:
    client: str
    env: dict[str, str]
    root: Path

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.client, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"docker {' '.join(args[:3])} … failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def inspect(self, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.run("inspect", name).stdout)
        return found[0]


def _timed(label: str, started: float) -> None:
    TIMINGS[label] = time.monotonic() - started


def _unmount_under(path: Path) -> None:
    """Anything dockerd left mounted below ``path`` (it unmounts its own on a clean stop)."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(path))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    stage = time.monotonic()
    started = time.monotonic()
    client = run_script("install-docker.sh")
    _timed("install docker.io", started)
    started = time.monotonic()
    tarball = run_script("base-image.sh")
    _timed("base image (debootstrap, or the cache)", started)

    # A short path: unix sockets (dockerd's, containerd's below it) allow ~100 characters.
    root = Path(tempfile.mkdtemp(prefix="fmw-docker-", dir="/tmp"))
    socket = root / "docker.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "PYTEST_"))}
    env |= {"DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "0"}
    log = (root / "dockerd.log").open("w")
    dockerd = subprocess.Popen(
        [
            shutil.which("dockerd") or "dockerd",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host=unix://{socket}",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    tool = Docker(client, env, root)
    try:
        started = time.monotonic()
        deadline = started + 60
        while tool.run("info", timeout=10, check=False).returncode != 0:
            assert dockerd.poll() is None, f"dockerd exited:\n{tail(root / 'dockerd.log')}"
            assert time.monotonic() < deadline, f"dockerd not ready:\n{tail(root / 'dockerd.log')}"
            time.sleep(0.5)
        _timed("dockerd start", started)

        started = time.monotonic()
        tool.run("import", "-c", "ENV LANG=C.UTF-8", "-c", 'CMD ["python3"]', tarball, BASE_TAG)
        _timed("docker import", started)
        started = time.monotonic()
        tool.run(
            "build",
            "--network=host",
            "--build-arg",
            f"PYTHON_IMAGE={BASE_TAG}",
            "-t",
            IMAGE,
            str(ROOT),
            timeout=600,
        )
        _timed("docker build", started)
        yield tool
    finally:
        tool.run("rm", "-f", CONTAINER, check=False, timeout=60)
        stop_process(dockerd, timeout=30)
        log.close()
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
        TIMINGS["stage"] = time.monotonic() - stage
        print("\ndocker: " + ", ".join(f"{k} {v:.0f} s" for k, v in TIMINGS.items()))


def test_help_exits_0(docker: Docker) -> None:
    result = docker.run("run", "--rm", "--network=none", IMAGE, "--help")
    assert "run" in result.stdout and "health" in result.stdout


def test_health_before_the_first_poll_is_unhealthy(docker: Docker) -> None:
    result = docker.run("run", "--rm", "--network=none", IMAGE, "health", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("unhealthy: no heartbeat at /tmp/"), result.stderr


def test_runs_as_uid_10001_with_the_health_check(docker: Docker) -> None:
    config = docker.inspect(IMAGE)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["worker"] and config["Cmd"] == ["run"]
    assert config["Healthcheck"]["Test"] == ["CMD", "worker", "health"]
    assert config["Healthcheck"]["Interval"] == 30 * 10**9
    ids = docker.run("run", "--rm", "--network=none", "--entrypoint", "id", IMAGE).stdout
    assert ids.startswith("uid=10001(worker) gid=10001(worker)"), ids
    # Only what the Dockerfile installs: no moto, no face engine, no compilers.
    probe = docker.run(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "python",
        IMAGE,
        "-c",
        "import importlib.util as u; print([m for m in ('moto', 'dlib', 'gcc') if u.find_spec(m)])",
    ).stdout
    assert probe.strip() == "[]"


@pytest.fixture(scope="module")
def embedded(docker: Docker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedProcess]:
    process = EmbeddedProcess(tmp_path_factory.mktemp("embedded")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def container(docker: Docker, embedded: EmbeddedProcess) -> Iterator[Stack]:
    """`worker run` in the image, read-only with /tmp on tmpfs, on the host network, against the
    embedded AWS; production settings otherwise (20 s long polls)."""
    stack = Stack.create(embedded.endpoint)
    env = embedded.env | {
        "BUCKET_NAME": stack.bucket,
        "QUEUE_URL": stack.queue_url,
        "SNS_TOPIC_ARN": stack.topic_arn,
        "DLQ_URL": stack.dlq_url,
        "LOG_FORMAT": "json",
    }
    args = [f"--env={k}={v}" for k, v in sorted(env.items())]
    docker.run(
        "run",
        "--detach",
        f"--name={CONTAINER}",
        "--read-only",
        "--tmpfs=/tmp",
        "--network=host",
        # The image's own check, polled every 2 s instead of 30 (its interval is checked above).
        "--health-interval=2s",
        *args,
        IMAGE,
    )
    yield stack
    docker.run("rm", "-f", CONTAINER, check=False)


def _logs(docker: Docker) -> str:
    result = docker.run("logs", CONTAINER, check=False)
    return (result.stdout + result.stderr)[-4000:]


def test_an_upload_end_to_end_read_only(docker: Docker, container: Stack) -> None:
    samples = pytest.importorskip("worker.local.samples").load_samples()
    reference = samples.references[0]
    upload = next(u for u in samples.uploads if u.key.endswith("astronaut-crop.jpg"))
    container.put(reference.key, reference.body)
    started = time.monotonic()
    container.put(upload.key, upload.body)
    try:
        (result,) = container.published(1, timeout=60)
    except AssertionError:
        raise AssertionError(f"no result from the container:\n{_logs(docker)}") from None
    _timed("upload → SNS", started)
    assert result.record["status"] == "matched", result.record
    assert [m["label"] for m in result.record["matches"]] == ["eileen_collins"]
    assert container.record(upload.key) == result.record
    state = docker.inspect(CONTAINER)
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["State"]["Running"] is True


def test_health_turns_healthy(docker: Docker, container: Stack) -> None:
    started = time.monotonic()
    status = ""
    while time.monotonic() - started < 60:
        status = docker.inspect(CONTAINER)["State"]["Health"]["Status"]
        if status == "healthy":
            break
        time.sleep(1)
    assert status == "healthy", _logs(docker)
    _timed("→ healthy", started)


def test_docker_stop_exits_0(docker: Docker, container: Stack) -> None:
    """SIGTERM, then SIGKILL after Docker's 10 s: the worker must stop within them, between
    two 20 s long polls, with exit code 0 (137 means it was killed)."""
    started = time.monotonic()
    docker.run("stop", CONTAINER, timeout=60)
    seconds = time.monotonic() - started
    TIMINGS["docker stop"] = seconds
    code = docker.inspect(CONTAINER)["State"]["ExitCode"]
    assert code == 0, f"docker stop: exit code {code} after {seconds:.1f} s\n{_logs(docker)}"
