"""The composition root: builds the pipeline and runner from settings and clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from worker.aws.clients import Clients
from worker.objects import ObjectStore
from worker.pipeline import Pipeline
from worker.publish import Publisher
from worker.recognition.client import Rekognition
from worker.recognition.collection import Collection, CollectionStrategy
from worker.recognition.compare import CompareStrategy, probe_reference
from worker.recognition.strategies import AutoStrategy
from worker.recognition.strategy import MatchStrategy
from worker.references import ReferenceCache
from worker.runner import DEFAULT_MAX_RECEIVE_COUNT, Runner, RunnerConfig
from worker.settings import Settings, Strategy
from worker.store import ResultStore
from worker.telemetry.emf import REFERENCE_CACHE_REFRESHES, EmfExporter
from worker.telemetry.metrics import Metrics

# Threads for the Rekognition calls of all uploads in flight (the compare fan-out).
RECOGNITION_THREADS_PER_UPLOAD = 4
MAX_RECOGNITION_THREADS = 64


@dataclass(frozen=True)
class Matching:
    """Everything that turns an upload's faces into matches, shared by `run` and `references`."""

    rekognition: Rekognition
    references: ReferenceCache
    objects: ObjectStore
    compare: CompareStrategy
    collection: CollectionStrategy
    strategy: MatchStrategy


def build_matching(settings: Settings, clients: Clients, metrics: Metrics) -> Matching:
    bucket = settings.bucket
    rekognition = Rekognition(
        clients.rekognition, max_tps=settings.rekognition_max_tps, metrics=metrics
    )
    references = ReferenceCache(
        clients.s3, bucket, settings.reference_prefix, settings.reference_cache_ttl_seconds
    )
    objects = ObjectStore(clients.s3, settings.max_object_bytes)
    calls = ThreadPoolExecutor(
        min(MAX_RECOGNITION_THREADS, RECOGNITION_THREADS_PER_UPLOAD * settings.concurrency),
        thread_name_prefix="rekognition",
    )
    compare = CompareStrategy(rekognition, references, bucket, calls)
    collection = CollectionStrategy(
        Collection(rekognition, settings.collection_id, bucket),
        references,
        objects.read_image,
        calls,
        detect=rekognition.detect_faces,
    )
    strategy: MatchStrategy
    if settings.strategy is Strategy.COMPARE:
        strategy = compare
    elif settings.strategy is Strategy.COLLECTION:
        strategy = collection
    else:
        strategy = AutoStrategy(compare, collection, references)
    return Matching(rekognition, references, objects, compare, collection, strategy)


def build_pipeline(settings: Settings, clients: Clients, metrics: Metrics) -> Pipeline:
    matching = build_matching(settings, clients, metrics)
    return Pipeline(
        settings=settings,
        objects=matching.objects,
        references=matching.references,
        strategy=matching.strategy,
        store=ResultStore(
            clients.s3, settings.bucket, settings.result_prefix, writes=clients.s3_leased
        ),
        probe=partial(probe_reference, matching.rekognition, settings.bucket),
        publisher=Publisher(clients.sns, str(settings.sns_topic_arn)),
        metrics=metrics,
    )


def build_runner(
    settings: Settings,
    clients: Clients,
    pipeline: Pipeline,
    dlq_url: str | None,
    max_receive_count: int | None = None,
) -> Runner:
    config = RunnerConfig(
        queue_url=str(settings.queue_url),
        dlq_url=dlq_url,
        concurrency=settings.concurrency,
        poll_wait_seconds=settings.poll_wait_seconds,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        grace_seconds=settings.shutdown_grace_seconds,
        health_file=settings.health_file,
        max_receive_count=max_receive_count or DEFAULT_MAX_RECEIVE_COUNT,
    )
    emf = (
        EmfExporter(
            pipeline.metrics,
            sources={REFERENCE_CACHE_REFRESHES: lambda: pipeline.references.refreshes},
        )
        if settings.emf_metrics
        else None
    )
    return Runner(clients.sqs, pipeline.handle, config, pipeline.metrics, emf=emf)
