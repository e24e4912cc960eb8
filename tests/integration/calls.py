"""Records every AWS call a `worker run` subprocess makes, for the IAM check of
``tests/integration/test_iam_measured.py``.

The worker runs unchanged (``python -m worker run``); :func:`environment` adds two variables to its
environment: ``PYTHONPATH`` with ``recorder/`` (whose ``sitecustomize.py`` Python imports at start)
and :data:`LOG_VARIABLE`, a directory. :func:`install` then registers botocore event handlers on
every botocore session the process creates, so each client call — whatever client made it —
appends one JSON line to ``<dir>/calls-<pid>.jsonl``: the service, the operation, the parameters
that name resources, the HTTP status and error code of the answer, and whether the request's
User-Agent carried the worker's marker (:data:`worker.aws.clients.USER_AGENT`). The first line of each
file is the process's deployment: the environment variables that name its resources.

botocore emits ``before-parameter-build`` with the caller's parameters, ``before-call`` with the
serialised request (its User-Agent header), then ``after-call`` once per operation, after its
retries (``after-call-error`` when no answer came).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_VARIABLE = "FACE_MATCH_CALL_LOG"
RECORDER_DIR = Path(__file__).resolve().parent / "recorder"
ROOT = Path(__file__).resolve().parents[2]
# The parameters that name what a call acts on; bodies and images are left out.
RESOURCE_PARAMETERS = (
    "Bucket",
    "Key",
    "VersionId",
    "Prefix",
    "QueueUrl",
    "QueueName",
    "QueueOwnerAWSAccountId",
    "TopicArn",
    "CollectionId",
)
IMAGE_PARAMETERS = ("Image", "SourceImage", "TargetImage")
# The worker's own settings that name resources (CONTRACT.md), as the process saw them.
DEPLOYMENT_VARIABLES = (
    "BUCKET_NAME",
    "QUEUE_URL",
    "DLQ_URL",
    "SNS_TOPIC_ARN",
    "REFERENCE_PREFIX",
    "UPLOAD_PREFIX",
    "RESULT_PREFIX",
    "COLLECTION_ID",
    "AWS_REGION",
)
_MARK = "face-match-worker/"
_STASH = "face_match_recorded"


def environment(directory: Path) -> dict[str, str]:
    """The variables that make a worker subprocess record its calls into ``directory``."""
    path = [str(RECORDER_DIR), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {LOG_VARIABLE: str(directory), "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def resource_parameters(params: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {k: params[k] for k in RESOURCE_PARAMETERS if k in params}
    for name in IMAGE_PARAMETERS:
        s3_object = (params.get(name) or {}).get("S3Object")
        if s3_object:
            kept[name] = {"S3Object": dict(s3_object)}
    return kept


class _Recorder:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / f"calls-{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        env = {name: os.environ[name] for name in DEPLOYMENT_VARIABLES if name in os.environ}
        self._write({"process": {"pid": os.getpid(), "argv": sys.argv, "env": env}})

    def _write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, default=str) + "\n"
        with self._lock, self._path.open("a", encoding="utf-8") as handle:
            handle.write(text)  # one line per call, flushed at once: the worker may be killed

    def parameters(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_STASH] = {"params": resource_parameters(params)}

    def request(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        agent = str(params.get("headers", {}).get("User-Agent", ""))
        context.setdefault(_STASH, {})["marked"] = _MARK in agent

    def answered(
        self, event_name: str, context: dict[str, Any], http_response: Any, parsed: Any, **_: Any
    ) -> None:
        error = (parsed or {}).get("Error", {}).get("Code")
        self._call(event_name, context, http_response.status_code, error)

    def failed(
        self, event_name: str, context: dict[str, Any], exception: Exception, **_: Any
    ) -> None:
        self._call(event_name, context, None, type(exception).__name__)

    def _call(
        self, event_name: str, context: dict[str, Any], status: int | None, error: Any
    ) -> None:
        _, service, operation = event_name.split(".", 2)  # after-call[-error].<service>.<operation>
        stash = context.get(_STASH, {})
        self._write(
            {
                "service": service,
                "operation": operation,
                "params": stash.get("params", {}),
                "marked": stash.get("marked", False),
                "status": status,
                "error": error,
            }
        )

    def register(self, session: Any) -> None:
        session.register("before-parameter-build", self.parameters)
        session.register("before-call", self.request)
        session.register("after-call", self.answered)
        session.register("after-call-error", self.failed)


def install() -> None:
    """Record the calls of every botocore session this process creates (from sitecustomize)."""
    directory = os.environ.get(LOG_VARIABLE)
    if not directory:
        return
    import botocore.session

    recorder = _Recorder(Path(directory))
    original = botocore.session.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        recorder.register(self)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------ reading


def processes(directory: Path) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(process header, its calls) for every recorded process in ``directory``."""
    for path in sorted(directory.glob("calls-*.jsonl")):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        if lines and "process" in lines[0]:
            yield lines[0]["process"], lines[1:]
