"""The fake Rekognition of the tests and benchmarks: the local engine's Rekognition API
(validation, error envelopes, collections) over coloured squares, behind :class:`Service`.

Its answers depend on the image it is sent (:mod:`tests.support.squares`): S3 objects are read
from the S3 endpoint it is given (moto, LocalStack), so a worker that sends the wrong object gets
the wrong answer. Quota, latency, faults and call counts are :class:`Service`'s; the collections
and the analysed images are the engine backend's (``backend``).
"""

from __future__ import annotations

import io
import threading
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

from tests.support.service import Service
from tests.support.squares import ColouredSquares
from worker.local.engine.backend import RekognitionBackend
from worker.local.engine.responses import RekognitionResponse

REGION = "us-east-1"
S3_CONFIG = Config(max_pool_connections=32)


class CachedHeads:
    """An S3 client for benchmarks whose objects never change: each object is read from S3 once.

    The first HEAD of an object is answered by a GET (its headers kept for every later HEAD, its
    body for the GET that follows it: the engine reads what it has not analysed yet), so the
    stand-in costs the shared S3 one call per new image, not two.
    """

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self._lock = threading.Lock()
        self._heads: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._bodies: dict[tuple[str, str, str], bytes] = {}

    @staticmethod
    def _name(params: dict[str, Any]) -> tuple[str, str, str]:
        return (str(params["Bucket"]), str(params["Key"]), str(params.get("VersionId")))

    def head_object(self, **params: Any) -> dict[str, Any]:
        name = self._name(params)
        with self._lock:
            head = self._heads.get(name)
        if head is None:
            got = self._s3.get_object(**params)
            body = got.pop("Body").read()
            head = got
            with self._lock:
                self._heads[name] = head
                self._bodies[name] = body
        return head

    def get_object(self, **params: Any) -> Any:
        with self._lock:
            body = self._bodies.pop(self._name(params), None)
        if body is None:
            return self._s3.get_object(**params)
        return {"Body": io.BytesIO(body)}


class FakeRekognition(Service):
    """A Rekognition JSON endpoint on loopback (``endpoint``); ``options`` are :class:`Service`'s.

    ``cache_images``: read each S3 object once (see :class:`CachedHeads`).
    """

    def __init__(self, s3_endpoint: str, *, cache_images: bool = False, **options: Any) -> None:
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # the emulators' dummy credentials
            config=S3_CONFIG,
        )
        reader = CachedHeads(s3) if cache_images else s3
        self.backend = RekognitionBackend(lambda: reader, region=REGION, models=ColouredSquares())
        super().__init__(RekognitionResponse(self.backend), **options)
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-rekognition", daemon=True
        )

    def start(self) -> FakeRekognition:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Counters, faults, collections and analysed images: all as new."""
        super().reset()
        self.backend.reset()
