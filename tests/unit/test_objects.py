"""worker.objects.ObjectStore.open: one ranged GET tells what a HEAD would, and the file's kind."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support.squares import ALICE, face_png
from worker.errors import InvalidImageError
from worker.events import ObjectRef
from worker.images import SNIFF_BYTES
from worker.objects import ObjectStore

BUCKET = "photos"


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def counting(s3: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


def test_open_answers_what_head_does_with_the_first_bytes(s3: Any) -> None:
    png = face_png(ALICE)
    s3.put_object(Bucket=BUCKET, Key="uploads/a.png", Body=png)
    store = ObjectStore(s3, max_object_bytes=15 * 1024 * 1024)
    ref = ObjectRef(bucket=BUCKET, key="uploads/a.png")
    calls = counting(s3)

    opened = store.open(ref)
    assert calls == Counter({"GetObject": 1})
    assert opened == store.head(ref)  # bucket, key, ETag, version, size
    assert opened.size == len(png)
    assert opened.leading == png[:SNIFF_BYTES]

    calls.clear()
    image = store.image_for_rekognition(opened)
    assert image == {"S3Object": {"Bucket": BUCKET, "Name": "uploads/a.png"}}
    assert calls == Counter()  # the bytes it sniffs were read when it was opened


def test_open_reads_the_version_the_event_names(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="uploads/a.png", Body=face_png(ALICE))
    s3.put_object(Bucket=BUCKET, Key="uploads/a.png", Body=b"not an image at all")
    store = ObjectStore(s3, max_object_bytes=15 * 1024 * 1024)

    opened = store.open(
        ObjectRef(bucket=BUCKET, key="uploads/a.png", version_id=first["VersionId"])
    )
    assert opened.version_id == first["VersionId"]
    assert opened.leading == face_png(ALICE)[:SNIFF_BYTES]


def test_an_empty_upload_is_opened_by_head_and_refused(s3: Any) -> None:
    """S3 refuses any byte range of a 0-byte object (416 InvalidRange): a HEAD tells what it is,
    and it gets its result, invalid_image, like any file that is no image."""
    s3.put_object(Bucket=BUCKET, Key="uploads/empty.jpg", Body=b"")
    store = ObjectStore(s3, max_object_bytes=1024)
    calls = counting(s3)

    opened = store.open(ObjectRef(bucket=BUCKET, key="uploads/empty.jpg"))
    assert calls == Counter({"GetObject": 1, "HeadObject": 1})
    assert opened.size == 0
    with pytest.raises(InvalidImageError, match="empty object"):
        store.image_for_rekognition(opened)


def test_a_huge_upload_is_refused_from_its_first_bytes(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/big.png", Body=face_png(ALICE) + b"\0" * 4096)
    store = ObjectStore(s3, max_object_bytes=1024)
    opened = store.open(ObjectRef(bucket=BUCKET, key="uploads/big.png"))
    assert opened.size > 4096
    with pytest.raises(InvalidImageError, match="object too large"):
        store.image_for_rekognition(opened)
