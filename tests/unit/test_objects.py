"""worker.objects.ObjectStore.open: one ranged GET tells what a HEAD would, and the file's kind."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
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


class _Raw:
    """An HTTP body as urllib3 hands it to botocore."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        return self._data.read(amt)

    def stream(self, **_: Any) -> Any:
        yield self._data.read()

    def close(self) -> None:
        self.closed = True


def _answering_get(s3: Any, status: int, headers: dict[str, str], raw: _Raw) -> None:
    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, {"ETag": '"abc"', **headers}, raw)

    s3.meta.events.register("before-send.s3.GetObject", answer)


def test_a_server_that_ignores_the_range_is_read_no_further(s3: Any) -> None:
    """A 200 with the whole object (no Content-Range): its first bytes, then the stream closed."""
    png = face_png(ALICE)
    raw = _Raw(png)
    _answering_get(s3, 200, {"Content-Length": str(len(png))}, raw)
    opened = ObjectStore(s3, max_object_bytes=1024 * 1024).open(
        ObjectRef(bucket=BUCKET, key="uploads/a.png")
    )
    assert (opened.etag, opened.size, opened.leading) == ("abc", len(png), png[:SNIFF_BYTES])
    assert raw.closed


def test_a_range_answer_without_the_total_size_falls_back_to_head(s3: Any) -> None:
    """``Content-Range: bytes 0-31/*`` does not say how large the object is: a HEAD does."""
    png = face_png(ALICE)
    s3.put_object(Bucket=BUCKET, Key="uploads/a.png", Body=png)
    _answering_get(s3, 206, {"Content-Range": "bytes 0-31/*"}, _Raw(png[:SNIFF_BYTES]))
    calls = counting(s3)
    opened = ObjectStore(s3, max_object_bytes=1024 * 1024).open(
        ObjectRef(bucket=BUCKET, key="uploads/a.png")
    )
    assert calls == Counter({"GetObject": 1, "HeadObject": 1})
    assert opened.size == len(png)
