"""Reading result records back for people (boto3 edge): list the recent ones, fetch them.

S3 lists keys in name order only, so "recent" means: list every object under RESULT_PREFIX
(ListObjectsV2, 1,000 keys a call), keep those modified since a moment, newest first, then fetch
the few wanted (GetObject, a few at a time). A record's ``LastModified`` is when the worker wrote
it (it is rewritten once, moments later, when its SNS message has gone out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.errors import translate
from worker.errors import ConfigError, NotFoundError
from worker.references import normalise_etag
from worker.results import ResultRecord

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# GetObject calls in flight while fetching many records.
FETCH_THREADS = 8


@dataclass(frozen=True)
class StoredResult:
    """One object under RESULT_PREFIX, as ListObjectsV2 shows it."""

    key: str
    etag: str
    modified: datetime


@dataclass(frozen=True)
class Fetched:
    """A stored result and its record, or why it is not one (``problem``)."""

    stored: StoredResult
    record: ResultRecord | None
    problem: str | None = None


def list_results(
    s3: S3Client, bucket: str, prefix: str, since: datetime | None = None
) -> list[StoredResult]:
    """The ``.json`` objects under ``prefix`` modified at or after ``since``, newest first."""
    found: list[StoredResult] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                modified = obj["LastModified"]
                if obj["Key"].endswith(".json") and (since is None or modified >= since):
                    found.append(
                        StoredResult(obj["Key"], normalise_etag(obj.get("ETag")), modified)
                    )
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError):
            raise ConfigError([f"BUCKET_NAME: bucket {bucket!r} does not exist"]) from exc
        raise error from exc
    found.sort(key=lambda stored: (stored.modified, stored.key), reverse=True)
    return found


def fetch(s3: S3Client, bucket: str, stored: StoredResult) -> Fetched:
    """The record in ``stored``; a result that is gone or not a record comes back as a problem."""
    try:
        body = s3.get_object(Bucket=bucket, Key=stored.key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError):  # deleted since the listing
            return Fetched(stored, None, "deleted since it was listed")
        raise error from exc
    try:
        return Fetched(stored, ResultRecord.from_json(json.loads(body)))
    except ValueError as exc:  # not JSON, or not a record
        return Fetched(stored, None, f"not a result record: {exc}")


def fetch_all(s3: S3Client, bucket: str, stored: Iterable[StoredResult]) -> Iterator[Fetched]:
    """:func:`fetch` for each, a few at a time, in the order given."""
    items = list(stored)
    if len(items) <= 1:
        yield from (fetch(s3, bucket, item) for item in items)
        return
    with ThreadPoolExecutor(min(FETCH_THREADS, len(items))) as pool:
        yield from pool.map(lambda item: fetch(s3, bucket, item), items)
