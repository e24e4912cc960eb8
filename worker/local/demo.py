"""`worker demo`: the whole pipeline in one process, with no AWS account and no network.

1. start the embedded AWS (moto's S3, SQS, SNS and the local face engine behind the Rekognition
   API) on a free loopback port;
2. point this process's boto3 at it through boto3's own environment variables — nothing else: the
   worker below is the same code that runs against AWS;
3. create the contract's resources with :mod:`worker.ops.provision` (what ``worker setup`` does) and
   subscribe a results queue to the topic;
4. upload the sample references and uploads of :mod:`worker.local.samples`;
5. run the real :class:`~worker.runner.Runner` in a thread until every upload's result has arrived
   on the results queue (handing each to the caller as it arrives, with its picture drawn by
   :mod:`worker.annotate` when asked), then stop it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from worker.annotate import annotate
from worker.app import build_pipeline, build_runner
from worker.aws.clients import Clients, make_client, make_clients
from worker.errors import InvalidImageError, WorkerError
from worker.local.samples import Sample, SampleSet, load_samples
from worker.ops.provision import provision
from worker.ops.wiring import plan
from worker.render import summary
from worker.results import ResultRecord
from worker.settings import Settings, load_settings
from worker.telemetry import logs
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from worker.local.engine.server import EmbeddedAWS

log = get_logger(__name__)

INSTALL_HINT = "pip install 'face-match-worker[local,demo]'"
# Modules of the `local` and `demo` extras the demo cannot run without.
REQUIRED_MODULES = (
    "moto",
    "werkzeug",
    "dlib",
    "face_recognition_models",
    "numpy",
    "skimage",
    "matplotlib",
)
DEMO_BUCKET = "face-match-demo"
RESULTS_QUEUE = "face-match-demo-results"
DEFAULT_TIMEOUT_SECONDS = 120.0
# Short long-polls and a short grace period: the demo stops as soon as its results are in.
POLL_WAIT_SECONDS = 1
SHUTDOWN_GRACE_SECONDS = 5.0
# SQS's largest receive batch and the results queue's long poll.
RECEIVE_BATCH = 10
RESULTS_WAIT_SECONDS = 1
# The longest status ("invalid_image"): the result lines' status column.
STATUS_WIDTH = 13
# boto3 variables that would send some calls elsewhere than the embedded endpoint, or that
# would carry a real session into it.
_CONFLICTING_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class DemoTimeout(WorkerError):
    """Not every upload had its result within the time allowed."""


@dataclass(frozen=True)
class DemoResult:
    """One upload, the result record the worker published for it, and its picture (the upload
    with the matched faces drawn on it) when one was written."""

    sample: Sample
    record: ResultRecord
    picture: Path | None = None

    @property
    def as_expected(self) -> bool:
        labels = sorted(match.label for match in self.record.matches)
        return self.record.status.value == self.sample.expected_status and labels == sorted(
            self.sample.expected_labels
        )


@dataclass(frozen=True)
class Arrival:
    """A result as it arrives: the ``done``-th of ``total``."""

    result: DemoResult
    done: int
    total: int
    key_width: int  # of the longest upload key, to align the lines

    def line(self) -> str:
        """``[3/7] uploads/stranger.jpg  no_match  1 face, nobody known``: the counter, the key,
        the status, who matched and how sure (or why not)."""
        record = self.result.record
        counter = f"[{self.done}/{self.total}]".ljust(2 * len(str(self.total)) + 3)
        return (
            f"{counter} {record.key:<{self.key_width}}  {record.status.value:<{STATUS_WIDTH}}  "
            f"{summary(record)}"
        ).rstrip()


OnResult = Callable[[Arrival], None]


def missing_modules() -> list[str]:
    """The modules of the `local` and `demo` extras that are not installed."""
    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken install, or sys.modules[name] is None
            found = False
        if not found:
            missing.append(name)
    return missing


def log_overrides(verbose: bool, environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """Console logs at WARNING (INFO with ``--verbose``) and no EMF metric lines, unless the
    environment (LOG_FORMAT, LOG_LEVEL, EMF_METRICS) says otherwise."""
    overrides: dict[str, object] = {}
    if "LOG_FORMAT" not in environ:
        overrides["log_format"] = "console"
    if verbose:
        overrides["log_level"] = "INFO"
    elif "LOG_LEVEL" not in environ:
        overrides["log_level"] = "WARNING"
    if not verbose and "EMF_METRICS" not in environ:
        overrides["emf_metrics"] = False  # CloudWatch metric lines mean nothing in a demo
    return overrides


def point_boto3_at(
    endpoint_environment: Mapping[str, str], environ: MutableMapping[str, str] | None = None
) -> None:
    """Send every boto3 call of this process to the embedded endpoint, by environment only.

    Service-specific endpoint variables (``AWS_ENDPOINT_URL_S3``…) would win over
    ``AWS_ENDPOINT_URL``, a profile or config file could name other endpoints or disable the
    variables, and a proxy would be asked for loopback addresses: all are cleared for this process.
    """
    env = os.environ if environ is None else environ
    for name in list(env):
        if name.startswith("AWS_ENDPOINT_URL_") or name in _CONFLICTING_AWS_VARIABLES:
            del env[name]
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    for name in ("NO_PROXY", "no_proxy"):
        current = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
        env[name] = ",".join(dict.fromkeys([*current, *_LOOPBACK_NAMES]))
    env.update(endpoint_environment)


def subscribe_results_queue(clients: Clients, topic_arn: str) -> str:
    """A queue that receives every published result record as its raw body."""
    url = clients.sqs.create_queue(QueueName=RESULTS_QUEUE)["QueueUrl"]
    arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    clients.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    clients.sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


def upload(clients: Clients, bucket: str, samples: Sequence[Sample]) -> None:
    for sample in samples:
        clients.s3.put_object(
            Bucket=bucket, Key=sample.key, Body=sample.body, ContentType=sample.content_type
        )
        log.info("demo_uploaded", key=sample.key, bytes=len(sample.body))


def collect_results(
    clients: Clients,
    results_url: str,
    keys: Sequence[str],
    deadline: float,
    worker: threading.Thread,
    *,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Read result records off the results queue until every key of ``keys`` has one, the
    deadline passes or the worker thread dies. Returns what arrived, by upload key; hands each
    key's first record to ``on_record`` as it arrives."""
    wanted = set(keys)
    found: dict[str, dict[str, Any]] = {}
    while wanted - found.keys() and time.monotonic() < deadline and worker.is_alive():
        response = clients.sqs.receive_message(
            QueueUrl=results_url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            WaitTimeSeconds=RESULTS_WAIT_SECONDS,
        )
        messages = response.get("Messages", [])
        for message in messages:
            record = json.loads(message["Body"])
            if record.get("key") in wanted and record["key"] not in found:
                found[record["key"]] = record
                if on_record is not None:
                    on_record(record)
        if messages:
            clients.sqs.delete_message_batch(
                QueueUrl=results_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                    for i, message in enumerate(messages)
                ],
            )
    return found


class WorkerThread(threading.Thread):
    """The real runner (``worker run`` minus its signal handlers) in a daemon thread."""

    def __init__(self, settings: Settings, clients: Clients, dlq_url: str) -> None:
        super().__init__(name="demo-worker", daemon=True)
        pipeline = build_pipeline(settings, clients, Metrics())
        self.runner = build_runner(settings, clients, pipeline, dlq_url)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # reported by run_demo instead of dying unseen
            log.exception("demo_worker_crashed")
            self.error = exc

    def stop(self) -> None:
        self.runner.stop()
        self.join(SHUTDOWN_GRACE_SECONDS + 2)


def write_picture(sample: Sample, record: ResultRecord, folder: Path) -> Path | None:
    """The upload with its matched faces drawn, as ``folder/<file name>`` (JPEG); None for an
    upload that is not an image."""
    try:
        picture = annotate(sample.body, record)
    except InvalidImageError:
        return None
    path = folder / PurePosixPath(sample.key).name
    path.write_bytes(picture)
    return path


def run_demo(
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    verbose: bool = False,
    on_result: OnResult | None = None,
    pictures: Path | None = None,
) -> list[DemoResult]:
    """Run the demo; return one result per sample upload, in the samples' order.

    Each result goes to ``on_result`` as it arrives; with ``pictures`` (an existing folder), each
    image upload is drawn there with its matched faces (:func:`write_picture`).
    Raises :class:`DemoTimeout` when some upload has no result after ``timeout`` seconds, and
    :class:`~worker.errors.ConfigError` for invalid settings in the environment.
    """
    from worker.local.engine.server import EmbeddedAWS  # noqa: PLC0415 - needs the `local` extra

    started = time.monotonic()
    base = load_settings(**log_overrides(verbose))
    logs.configure(base.log_level, base.log_format)
    samples = load_samples(base.reference_prefix, base.upload_prefix)
    with EmbeddedAWS(port=0) as aws:
        settings, clients, dlq_url, results_url = _prepare(aws, base, samples, verbose)
        worker = WorkerThread(settings, clients, dlq_url)
        worker.start()
        keys = [sample.key for sample in samples.uploads]
        by_key = {sample.key: sample for sample in samples.uploads}
        arrived: dict[str, DemoResult] = {}

        def on_record(doc: dict[str, Any]) -> None:
            result = DemoResult(by_key[doc["key"]], ResultRecord.from_json(doc))
            if pictures is not None:
                result = replace(
                    result, picture=write_picture(result.sample, result.record, pictures)
                )
            arrived[result.sample.key] = result
            if on_result is not None:
                on_result(Arrival(result, len(arrived), len(keys), max(map(len, keys))))

        try:
            upload(clients, settings.bucket, samples.uploads)
            records = collect_results(
                clients, results_url, keys, started + timeout, worker, on_record=on_record
            )
        finally:
            worker.stop()
    missing = [key for key in keys if key not in records]
    if worker.error is not None:
        raise WorkerError(
            f"the worker stopped with {type(worker.error).__name__}: {worker.error} "
            f"({len(missing)} of {len(keys)} uploads without a result)"
        ) from worker.error
    if missing:
        raise DemoTimeout(
            f"no result within {timeout:g} s for {len(missing)} of {len(keys)} uploads "
            f"({', '.join(missing)}); run `worker demo --verbose` to see the worker's logs"
        )
    results = [arrived[sample.key] for sample in samples.uploads]
    for result in results:
        if not result.as_expected:
            log.warning(
                "demo_unexpected_result",
                key=result.sample.key,
                expected=result.sample.expected_status,
                expected_labels=list(result.sample.expected_labels),
                status=result.record.status.value,
                labels=[m.label for m in result.record.matches],
            )
    log.info("demo_done", uploads=len(results), seconds=round(time.monotonic() - started, 1))
    return results


def _prepare(
    aws: EmbeddedAWS, base: Settings, samples: SampleSet, verbose: bool
) -> tuple[Settings, Clients, str, str]:
    """Point boto3 at ``aws``, create the resources, upload the references."""
    point_boto3_at(aws.environment())
    clients = make_clients()
    stack = provision(
        plan(
            DEMO_BUCKET,
            reference_prefix=base.reference_prefix,
            upload_prefix=base.upload_prefix,
            result_prefix=base.result_prefix,
        ),
        s3=clients.s3,
        sqs=clients.sqs,
        sns=clients.sns,
        sts=make_client("sts"),
        region=aws.region,
    )
    results_url = subscribe_results_queue(clients, stack.topic_arn)
    upload(clients, stack.bucket, samples.references)
    settings = load_settings(
        bucket_name=stack.bucket,
        sns_topic_arn=stack.topic_arn,
        queue_url=stack.queue_url,
        dlq_url=stack.dlq_url,
        poll_wait_seconds=POLL_WAIT_SECONDS,
        shutdown_grace_seconds=SHUTDOWN_GRACE_SECONDS,
        health_file=None,
        **log_overrides(verbose),
    )
    return settings, clients, stack.dlq_url, results_url
