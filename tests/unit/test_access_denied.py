"""A HEAD or GET that S3 refuses with 403 — what AWS answers for a missing key to a caller
without s3:ListBucket (API_HeadObject and API_GetObject, "Permissions") — is reported as access
denied, naming the permission, both for the upload (worker.objects) and for its result record
(worker.store).

moto answers 404 whatever the caller may do, so a botocore ``before-send`` hook answers 403 the
way S3 does for a HEAD: no body, so the error code is the status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from worker.errors import AccessDeniedError, ObjectGoneError
from worker.events import ObjectRef
from worker.objects import ObjectStore
from worker.store import ResultStore


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def _client_answering(status: int, operation: str = "HeadObject") -> Any:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, {"x-amz-request-id": "test"}, _Empty())

    s3.meta.events.register(f"before-send.s3.{operation}", answer)
    return s3


def test_a_refused_upload_head_names_s3_list_bucket() -> None:
    store = ObjectStore(_client_answering(403), max_object_bytes=1024)
    with pytest.raises(AccessDeniedError, match="s3:ListBucket") as raised:
        store.head(ObjectRef(bucket="photos", key="uploads/gone.jpg"))
    assert "s3://photos/uploads/gone.jpg" in str(raised.value)
    assert raised.value.code == "403"


def test_a_missing_upload_with_list_permission_is_gone() -> None:
    store = ObjectStore(_client_answering(404), max_object_bytes=1024)
    with pytest.raises(ObjectGoneError):
        store.head(ObjectRef(bucket="photos", key="uploads/gone.jpg"))


def test_opening_a_refused_upload_names_s3_list_bucket() -> None:
    """The pipeline opens an upload with a ranged GET: S3's 403 there reads the same."""
    store = ObjectStore(_client_answering(403, "GetObject"), max_object_bytes=1024)
    with pytest.raises(AccessDeniedError, match="s3:ListBucket") as raised:
        store.open(ObjectRef(bucket="photos", key="uploads/gone.jpg"))
    assert "s3://photos/uploads/gone.jpg" in str(raised.value)
    gone = ObjectStore(_client_answering(404, "GetObject"), max_object_bytes=1024)
    with pytest.raises(ObjectGoneError):
        gone.open(ObjectRef(bucket="photos", key="uploads/gone.jpg"))


def test_a_refused_record_lookup_names_s3_list_bucket() -> None:
    records = ResultStore(_client_answering(403), "photos", "results/")
    with pytest.raises(AccessDeniedError, match="s3:ListBucket"):
        records.lookup("uploads/new.jpg")
    assert (
        ResultStore(_client_answering(404), "photos", "results/").lookup("uploads/new.jpg") is None
    )
