"""What the real-part stages share: CI or not, free ports, processes stopped by their PID, and
the install scripts next to this file.

A stage that cannot run on a machine (no apt, no pyenv Python) fails loudly in CI (``CI=true``)
and is skipped, with the reason, elsewhere: :func:`unavailable`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere: a stage that cannot run must never pass silently in CI."""
    if in_ci():
        pytest.fail(f"CI=true and this stage cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_port_free(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port):
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} still answers {timeout:.0f} s after the stop")
        time.sleep(0.2)


def stop_process(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 20.0
) -> int:
    """SIGTERM to the process group we started (``start_new_session=True``), SIGKILL after
    ``timeout``; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:
        # The leader is gone; make sure nothing it started is left in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def run_script(name: str, *args: str, timeout: float = 900) -> str:
    """Run one of the install scripts next to this file; its last stdout line is its answer
    (a path or an image name). Exit 3 means "cannot run here" (no apt, no pyenv Python)."""
    result = subprocess.run(
        [str(HERE / name), *args],
        stdout=subprocess.PIPE,
        stderr=None,  # progress and timings go to the terminal
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode == 3:
        unavailable(lines[-1] if lines else f"{name} cannot run on this machine")
    assert result.returncode == 0, f"{name} {' '.join(args)} failed ({result.returncode})"
    return lines[-1] if lines else ""


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


class EmbeddedProcess:
    """`python -m worker embedded` in a subprocess of its own, stopped by its PID; ``env`` holds
    the variables it printed."""

    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.args = args
        self.base_env = env
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = workdir / "embedded.log"

    def start(self, timeout: float = 60) -> EmbeddedProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.base_env
        if env is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "embedded", "--port", "0", *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            words = shlex.split(line)
            if words[:1] == ["export"] and len(words) == 2:
                name, _, value = words[1].partition("=")
                self.env[name] = value
            if "AWS_DEFAULT_REGION" in self.env or "AWS_ENDPOINT_URL_REKOGNITION" in self.env:
                return self
        self.stop()
        raise RuntimeError(f"worker embedded did not start:\n{tail(self.log_path)}")

    @property
    def endpoint(self) -> str:
        return self.env.get("AWS_ENDPOINT_URL") or self.env["AWS_ENDPOINT_URL_REKOGNITION"]

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        code = stop_process(proc)
        if self.env:
            wait_port_free(int(self.endpoint.rsplit(":", 1)[1]))
        return code
