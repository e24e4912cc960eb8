import boto3
import pytest
from moto import mock_aws

from worker.references import ReferenceCache, label_for


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("references/alice.jpg", "alice"),
        ("references/alice.PNG", "alice"),
        ("references/bob/1.jpeg", "bob"),
        ("references/bob/holiday/2.jpg", "bob"),
        ("references/Zoë Smith.jpg", "Zoë Smith"),
        ("references/notes.txt", None),
        ("references/", None),
        ("references/.jpg", None),
        ("uploads/alice.jpg", None),
    ],
)
def test_labels(key: str, label: str | None) -> None:
    assert label_for(key, "references/") == label


@mock_aws
def test_cache_lists_once_per_ttl_and_after_invalidate() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="photos")
    for i in range(1500):  # more than one page of ListObjectsV2
        s3.put_object(Bucket="photos", Key=f"references/p{i % 7}/{i}.jpg", Body=b"x")
    now = [0.0]
    cache = ReferenceCache(s3, "photos", "references/", ttl_seconds=300, clock=lambda: now[0])
    refs = cache.get()
    assert len(refs) == 1500
    assert cache.labels() == {f"p{i}" for i in range(7)}
    s3.put_object(Bucket="photos", Key="references/new.jpg", Body=b"x")
    now[0] = 299
    assert len(cache.get()) == 1500 and cache.refreshes == 1
    now[0] = 300
    assert len(cache.get()) == 1501 and cache.refreshes == 2
    cache.invalidate()
    cache.get()
    assert cache.refreshes == 3


@mock_aws
def test_unusable_reference_is_left_out_until_it_changes() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="references/a.jpg", Body=b"x")
    s3.put_object(Bucket="photos", Key="references/b.jpg", Body=b"y")
    cache = ReferenceCache(s3, "photos", "references/", ttl_seconds=0)
    (a, b) = cache.get()
    cache.mark_unusable(a, "no face")
    cache.mark_unusable(a, "no face")
    assert cache.get() == (b,)
    s3.put_object(Bucket="photos", Key="references/a.jpg", Body=b"a new photo")
    assert [r.key for r in cache.get()] == ["references/a.jpg", "references/b.jpg"]
