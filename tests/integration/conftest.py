"""Fixtures for integration tests: moto server and fake Rekognition for the session, a fresh
stack per test, and a running worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from tests.fakes.rekognition import FakeRekognition
from tests.integration.harness import Stack, WorkerProcess


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def fake_rekognition(moto_endpoint: str) -> Iterator[FakeRekognition]:
    fake = FakeRekognition(moto_endpoint).start()
    yield fake
    fake.stop()


@pytest.fixture
def stack(moto_endpoint: str, fake_rekognition: FakeRekognition) -> Stack:
    fake_rekognition.reset()
    return Stack.create(moto_endpoint)


@pytest.fixture
def start_worker(
    stack: Stack, fake_rekognition: FakeRekognition, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `worker run` against the stack; extra keyword arguments become settings."""
    started: list[WorkerProcess] = []

    def start(**settings: str) -> WorkerProcess:
        settings.setdefault("HEALTH_FILE", str(tmp_path / f"health-{len(started)}"))
        env = stack.env(fake_rekognition.endpoint, **settings)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_for_log("worker_started")
        return worker

    yield start
    for worker in started:
        worker.kill()
