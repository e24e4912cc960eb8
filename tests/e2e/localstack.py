"""LocalStack in host mode (``python -m localstack.runtime.main``, no Docker) as a second
emulator of S3, SQS, SNS and STS, started and stopped by its PID.

Its own TLS certificate code breaks with pyOpenSSL 26, so it gets a ready self-signed one
(``CUSTOM_SSL_CERT_PATH``); everything it writes lives under one temporary folder
(``OVERRIDE_IN_DOCKER=0`` + ``FILESYSTEM_ROOT``; without them it writes to /var/lib/localstack
because this machine looks like a container to it); ``DNS_ADDRESS=0``: no DNS server on port 53.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.e2e.support import free_port, stop_process, tail, wait_port_free

START_TIMEOUT = 90


def self_signed_pem(path: Path) -> Path:
    """A key + certificate PEM for localhost (what ``CUSTOM_SSL_CERT_PATH`` wants)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost.localstack.cloud")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("localhost.localstack.cloud"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


class LocalStack:
    """One LocalStack process on a free loopback port; ``endpoint`` once started."""

    def __init__(
        self,
        python: str | Path,
        workdir: Path,
        services: tuple[str, ...] = ("s3", "sqs", "sns", "sts"),
    ) -> None:
        self.python = str(python)
        self.workdir = workdir
        self.services = services
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "localstack.log"
        self.startup_seconds = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert = self_signed_pem(self.workdir / "server.pem")
        self.port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "PYTEST_", "LOCALSTACK_", "SERVICES"))
        }
        env.update(
            GATEWAY_LISTEN=f"127.0.0.1:{self.port}",
            SERVICES=",".join(self.services),
            CUSTOM_SSL_CERT_PATH=str(cert),
            OVERRIDE_IN_DOCKER="0",
            FILESYSTEM_ROOT=str(self.workdir / "fs"),
            DNS_ADDRESS="0",
            SKIP_SSL_CERT_DOWNLOAD="1",
            DISABLE_EVENTS="1",  # no analytics calls home
            EAGER_SERVICE_LOADING="1",
        )
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "localstack.runtime.main"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        assert self.proc is not None
        url = f"{self.endpoint}/_localstack/health"
        while time.monotonic() - started < START_TIMEOUT:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"LocalStack exited with {self.proc.returncode}:\n{tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # loopback
                    health = json.loads(response.read())
            except OSError:
                time.sleep(0.3)
                continue
            states = health.get("services", {})
            if all(states.get(s) in {"available", "running"} for s in self.services):
                return
            time.sleep(0.3)
        raise RuntimeError(f"LocalStack not ready within {START_TIMEOUT} s:\n{tail(self.log_path)}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_process(proc, timeout=20)
        wait_port_free(self.port)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
