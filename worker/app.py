"""The composition root: builds the pipeline and runner from settings and clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from worker.clients import Clients
from worker.emf import REFERENCE_CACHE_REFRESHES, EmfExporter
from worker.metrics import Metrics
from worker.objects import ObjectStore
from worker.pipeline import Pipeline
from worker.publish import Publisher
from worker.recognition.client import Rekognition
from worker.recognition.compare import CompareStrategy
from worker.references import ReferenceCache
from worker.runner import Runner, RunnerConfig
from worker.settings import Settings
from worker.store import ResultStore

# Threads for the Rekognition calls of all uploads in flight (the compare fan-out).
RECOGNITION_THREADS_PER_UPLOAD = 4
MAX_RECOGNITION_THREADS = 64


def build_pipeline(settings: Settings, clients: Clients, metrics: Metrics) -> Pipeline:
    bucket = settings.bucket
    rekognition = Rekognition(
        clients.rekognition, max_tps=settings.rekognition_max_tps, metrics=metrics
    )
    references = ReferenceCache(
        clients.s3, bucket, settings.reference_prefix, settings.reference_cache_ttl_seconds
    )
    calls = ThreadPoolExecutor(
        min(MAX_RECOGNITION_THREADS, RECOGNITION_THREADS_PER_UPLOAD * settings.concurrency),
        thread_name_prefix="rekognition",
    )
    return Pipeline(
        settings=settings,
        objects=ObjectStore(clients.s3, settings.max_object_bytes),
        rekognition=rekognition,
        references=references,
        strategy=CompareStrategy(rekognition, references, bucket, calls),
        store=ResultStore(clients.s3, bucket, settings.result_prefix),
        publisher=Publisher(clients.sns, str(settings.sns_topic_arn)),
        metrics=metrics,
    )


def build_runner(
    settings: Settings, clients: Clients, pipeline: Pipeline, dlq_url: str | None
) -> Runner:
    config = RunnerConfig(
        queue_url=str(settings.queue_url),
        dlq_url=dlq_url,
        concurrency=settings.concurrency,
        poll_wait_seconds=settings.poll_wait_seconds,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        grace_seconds=settings.shutdown_grace_seconds,
        health_file=settings.health_file,
    )
    emf = EmfExporter(
        pipeline.metrics,
        sources={REFERENCE_CACHE_REFRESHES: lambda: pipeline.references.refreshes},
    )
    return Runner(clients.sqs, pipeline.handle, config, pipeline.metrics, emf=emf)
