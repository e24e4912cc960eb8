"""Fixtures for integration tests: moto server and fake Rekognition for the session, a fresh
stack per test, and a running worker.

``aws_endpoint`` is the emulator a test runs against: moto unless the module is marked
``@pytest.mark.emulators("moto", "localstack")``, which runs each of its tests against both.
LocalStack (host mode, its own venv: tests/e2e/install-localstack.sh) starts once per session,
on first use; where it is not installed its tests are skipped with the reason — and fail in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from tests.e2e.localstack import LocalStack
from tests.e2e.support import ROOT, in_ci, run_script, unavailable
from tests.integration import calls
from tests.integration.harness import Stack, WorkerProcess
from tests.support.rekognition import FakeRekognition
from worker.local import moto_speedups

EMULATORS = ("moto", "localstack")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulators(*names): run the module's tests against each emulator named"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("emulators")
    if marker is not None and "aws_endpoint" in metafunc.fixturenames:
        metafunc.parametrize("aws_endpoint", marker.args or EMULATORS, indirect=True)


MEASURED_LAST = "test_iam_measured.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The IAM check judges the calls of every worker of the session: it runs last."""
    items.sort(key=lambda item: item.path.name == MEASURED_LAST)  # stable: the rest keep order


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    moto_speedups.apply()  # the same answers, less CPU per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def localstack_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python = ROOT / ".venv-localstack" / "bin" / "python"
    if not python.exists():
        if not in_ci():
            unavailable(
                "LocalStack is not installed: `./dev e2e localstack` (or CI=true) installs it "
                "in .venv-localstack"
            )
        python = Path(run_script("install-localstack.sh"))
    with LocalStack(python, tmp_path_factory.mktemp("localstack")) as localstack:
        yield localstack.endpoint


@pytest.fixture
def aws_endpoint(request: pytest.FixtureRequest) -> str:
    """The emulator's endpoint: moto unless parametrised by the ``emulators`` marker."""
    name = getattr(request, "param", "moto")
    endpoint: str = request.getfixturevalue(f"{name}_endpoint")
    return endpoint


@pytest.fixture(scope="session")
def _fakes() -> Iterator[dict[str, FakeRekognition]]:
    """One fake Rekognition per emulator, each reading S3 objects from its emulator."""
    fakes: dict[str, FakeRekognition] = {}
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture
def fake_rekognition(
    aws_endpoint: str, _fakes: dict[str, FakeRekognition]
) -> Iterator[FakeRekognition]:
    """The emulator's fake; whatever a test held, slowed or broke is undone after it."""
    if aws_endpoint not in _fakes:
        _fakes[aws_endpoint] = FakeRekognition(aws_endpoint).start()
    yield _fakes[aws_endpoint]
    _fakes[aws_endpoint].reset()


@pytest.fixture(scope="session")
def call_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every `worker run` of the session records its AWS calls (tests/integration/calls.py)."""
    return tmp_path_factory.mktemp("aws-calls")


@pytest.fixture
def stack(aws_endpoint: str, fake_rekognition: FakeRekognition) -> Stack:
    fake_rekognition.reset()
    return Stack.create(aws_endpoint)


@pytest.fixture
def start_worker(
    stack: Stack, fake_rekognition: FakeRekognition, tmp_path: Path, call_log: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `worker run` against the stack; extra keyword arguments become settings. Each worker
    records its AWS calls into ``call_log`` for the IAM check (test_iam_measured.py)."""
    started: list[WorkerProcess] = []

    def start(**settings: str) -> WorkerProcess:
        settings.setdefault("HEALTH_FILE", str(tmp_path / f"health-{len(started)}"))
        env = stack.env(fake_rekognition.endpoint, **settings) | calls.environment(call_log)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_for_log("worker_started")
        return worker

    yield start
    for worker in started:
        worker.kill()
