"""The operator's verbs in subprocesses against `worker embedded` (started once per test module):
the environment a user gets from `eval "$(worker embedded)"` and `eval "$(worker setup …)"`."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_cli_embedded import EXPORTS, STOP_TIMEOUT, read_exports
from tests.integration.harness import cli
from worker.cli import main

CLI_TIMEOUT = 90
# What `worker setup` exports besides boto3's variables.
SETTINGS = ("BUCKET_NAME", "QUEUE_URL", "DLQ_URL", "SNS_TOPIC_ARN")


def exported(lines: list[str] | str) -> dict[str, str]:
    """``{NAME: value}`` of ``export NAME=value`` lines."""
    found = {}
    for line in lines.splitlines() if isinstance(lines, str) else lines:
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


class EmbeddedStack:
    """`worker embedded --port 0` in a subprocess, `worker setup --bucket BUCKET` against it, and
    the environment both print, for running `worker …` like a user in a fresh shell."""

    def __init__(self, workdir: Path, bucket: str) -> None:
        self.workdir = workdir
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AWS_") and name not in {"PYTEST_CURRENT_TEST"}
        }
        self.env.update(
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            LOG_FORMAT="console",
            HEALTH_FILE="",
            POLL_WAIT_SECONDS="1",
        )
        self.server = subprocess.Popen(
            [sys.executable, "-m", "worker", "embedded", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd=workdir,
        )
        try:
            lines = read_exports(self.server)
            assert len(lines) == EXPORTS, (lines, self.server.poll())
            self.env.update(exported(lines))
            setup = self.worker("setup", "--bucket", bucket)
            assert setup.returncode == 0, setup.stderr
            self.env.update(exported(setup.stdout))
        except BaseException:
            self.stop()
            raise

    def worker(
        self, *args: str, timeout: float = CLI_TIMEOUT, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """`python -m worker ARGS` in the stack's environment (plus ``env``), to completion."""
        return cli(*args, env={**self.env, **env}, cwd=self.workdir, timeout=timeout)

    def start(self, *args: str, **popen: object) -> subprocess.Popen[str]:
        """`python -m worker ARGS` in the background (stdout piped, stderr to a file)."""
        return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
            [sys.executable, "-m", "worker", *args],
            env=self.env,
            cwd=self.workdir,
            text=True,
            **popen,
        )

    def stop(self) -> None:
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert ``proc`` exited ``code`` with one line on stderr and no traceback; return it."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def point_here(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process's environment as the stack's (for :func:`run_main`)."""
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for name, value in stack.env.items():
        if name.startswith("AWS_") or name in SETTINGS:
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(stack.workdir)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`worker ARGV` in this process (fast: no interpreter start-up): exit code, stdout, stderr.
    Usage errors (argparse's SystemExit) come back as their exit code too."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
