"""The embedded AWS: moto's server app (S3, SQS, SNS, …) and the local face engine behind ONE
loopback endpoint, like LocalStack's edge port.

:class:`EdgeRouter` picks the service of each request without reading its body: the SigV4
credential scope of the ``Authorization`` header (``Credential=AKID/date/region/rekognition/
aws4_request``) or an ``X-Amz-Target: RekognitionService.…`` header sends it to the engine;
everything else goes to moto's own dispatcher.

moto keeps its state in module-level backends: every :class:`EmbeddedAWS` of one process shares
the same buckets, queues and topics (the engine's collections are per instance).

``rekognition_only=True`` serves the engine alone (any other request is refused with a clear
error) and reads ``S3Object`` images through a boto3 S3 client built from the environment
(``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, credentials, region): the local engine beside
whatever S3 the worker uses — LocalStack, a MinIO, or AWS itself.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import boto3
import structlog
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from worker.local import moto_speedups
from worker.local.engine.backend import RekognitionBackend
from worker.local.engine.responses import TARGET_PREFIX, RekognitionResponse

# Dummy credentials: moto accepts any, and nothing here should ever reach real AWS.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - a placeholder, not a secret
DEFAULT_REGION = "us-east-1"
# How long stop() waits for the serving thread.
STOP_TIMEOUT_SECONDS = 10

log = structlog.get_logger(__name__)

# The S3 client's settings, wherever it points.
S3_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=32
)


def is_rekognition(environ: dict[str, Any]) -> bool:
    """True when a request is for Rekognition (by SigV4 scope or target header)."""
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
        return True
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    start = auth.find(marker)
    if start < 0:
        return False
    scope = auth[start + len(marker) :].split(",", 1)[0].strip().split("/")
    return len(scope) == 5 and scope[3].lower() == "rekognition"


class EdgeRouter:
    """WSGI app: Rekognition requests to the engine, the rest to moto."""

    def __init__(self, engine: Any, moto_app: Any) -> None:
        self.engine = engine
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        app = self.engine if is_rekognition(environ) else self.moto_app
        result: Iterable[bytes] = app(environ, start_response)
        return result


def refuse_non_rekognition(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The answer of a Rekognition-only endpoint to any other service: 400, saying why."""
    body = (
        b'{"__type": "UnknownOperationException", "message": "this endpoint serves only '
        b"Rekognition (worker embedded --services rekognition); point the other services at "
        b'their own endpoint"}'
    )
    start_response(
        "400 Bad Request",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
    )
    return [body]


class EmbeddedAWS:
    """S3, SQS, SNS (moto) and Rekognition (the local engine) on one loopback endpoint, or
    Rekognition alone (``rekognition_only``) reading images from the environment's S3.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with EmbeddedAWS() as aws:
            os.environ.update(aws.environment())
            boto3.client("rekognition").compare_faces(...)
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        region: str | None = None,
        preload_models: bool = True,
        log_requests: bool = False,
        *,
        rekognition_only: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region or os.environ.get("AWS_REGION") or DEFAULT_REGION
        self.preload_models = preload_models
        self.log_requests = log_requests
        self.rekognition_only = rekognition_only
        s3_factory = self._environment_s3_client if rekognition_only else self._s3_client
        self.backend = RekognitionBackend(s3_factory, region=self.region)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("EmbeddedAWS is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables that point boto3, the AWS CLI and ``worker run`` at this endpoint
        (Rekognition-only: that service's endpoint alone; the rest stays as it is)."""
        if self.rekognition_only:
            return {"AWS_ENDPOINT_URL_REKOGNITION": self.endpoint_url}
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` on this endpoint, whatever the environment says."""
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            aws_session_token=None,
            **kwargs,
        )

    def _s3_client(self) -> Any:
        return self.client("s3", config=S3_CLIENT_CONFIG)

    def _environment_s3_client(self) -> Any:
        """S3 as the environment has it (endpoint, credentials; region defaulting to ours)."""
        session = boto3.session.Session()
        return session.client(
            "s3", region_name=session.region_name or self.region, config=S3_CLIENT_CONFIG
        )

    def start(self) -> EmbeddedAWS:
        """Bind, serve in a daemon thread and return once requests are accepted."""
        if self._server is not None:
            return self
        if self.preload_models:
            _ = self.backend.models
        if not self.log_requests:
            # werkzeug logs one INFO line per request; keep its warnings and errors.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if not self.rekognition_only:
            moto_speedups.apply()
        others: Any = (
            refuse_non_rekognition
            if self.rekognition_only
            else DomainDispatcherApplication(create_backend_app)
        )
        app = EdgeRouter(RekognitionResponse(self.backend), others)
        server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, name="embedded-aws", daemon=True
        )
        self._thread.start()
        log.info(
            "embedded.started",
            endpoint=self.endpoint_url,
            services="rekognition" if self.rekognition_only else "all",
        )
        return self

    def stop(self) -> None:
        """Stop serving (requests in flight finish) and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)
            self._thread = None
        log.info("embedded.stopped")

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
