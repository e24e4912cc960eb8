"""Every Rekognition action of the engine through an unchanged boto3 client on EmbeddedAWS.

Uses the public-domain sample photos that ship in pip packages (see the ``samples`` fixture), so
these tests need no corpus.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import pytest
from PIL import Image

from tests.engine.conftest import jpeg
from worker.local.engine.server import EmbeddedAWS

BUCKET = "engine-api-tests"


@pytest.fixture(scope="module")
def bucket(s3: Any, samples: dict[str, bytes]) -> str:
    s3.create_bucket(Bucket=BUCKET)
    for name, data in samples.items():
        s3.put_object(Bucket=BUCKET, Key=f"photos/{name}", Body=data)
    return BUCKET


def s3_image(key: str) -> dict[str, Any]:
    return {"S3Object": {"Bucket": BUCKET, "Name": f"photos/{key}"}}


def assert_box(box: dict[str, float]) -> None:
    assert set(box) == {"Width", "Height", "Left", "Top"}
    assert all(0 <= value <= 1 for value in box.values())
    assert box["Left"] + box["Width"] <= 1.0001 and box["Top"] + box["Height"] <= 1.0001


def test_compare_faces_bytes(rekognition: Any, samples: dict[str, bytes]) -> None:
    answer = rekognition.compare_faces(
        SourceImage={"Bytes": samples["astronaut_small"]}, TargetImage={"Bytes": samples["pair"]}
    )
    assert_box(answer["SourceImageFace"]["BoundingBox"])
    assert answer["SourceImageFace"]["Confidence"] > 90
    [match] = answer["FaceMatches"]
    assert match["Similarity"] >= 99
    assert match["Face"]["BoundingBox"]["Left"] < 0.5  # the astronaut is the left half
    assert {mark["Type"] for mark in match["Face"]["Landmarks"]} == {"eyeLeft", "eyeRight", "nose"}
    [unmatched] = answer["UnmatchedFaces"]
    assert unmatched["BoundingBox"]["Left"] > 0.5
    assert_box(unmatched["BoundingBox"])


def test_compare_faces_s3_objects_and_threshold(rekognition: Any, bucket: str) -> None:
    answer = rekognition.compare_faces(
        SourceImage=s3_image("hopper"), TargetImage=s3_image("astronaut")
    )
    assert answer["FaceMatches"] == [] and len(answer["UnmatchedFaces"]) == 1
    everything = rekognition.compare_faces(
        SourceImage=s3_image("hopper"), TargetImage=s3_image("pair"), SimilarityThreshold=0
    )
    scores = [m["Similarity"] for m in everything["FaceMatches"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    assert scores[0] >= 99 and scores[1] < 80


def test_compare_faces_errors(rekognition: Any, samples: dict[str, bytes], bucket: str) -> None:
    errors = rekognition.exceptions
    face = {"Bytes": samples["hopper"]}
    with pytest.raises(errors.InvalidParameterException):
        rekognition.compare_faces(SourceImage={"Bytes": samples["blank"]}, TargetImage=face)
    for _ in range(2):  # the second answer comes from the cache, and is the same
        with pytest.raises(errors.InvalidImageFormatException):
            rekognition.compare_faces(SourceImage={"Bytes": b"not an image"}, TargetImage=face)
    gif = io.BytesIO()
    Image.new("RGB", (50, 50)).save(gif, "GIF")
    with pytest.raises(errors.InvalidImageFormatException):
        rekognition.compare_faces(SourceImage=face, TargetImage={"Bytes": gif.getvalue()})
    with pytest.raises(errors.ImageTooLargeException):
        rekognition.compare_faces(
            SourceImage=face, TargetImage={"Bytes": b"\xff\xd8\xff" + bytes(5 * 1024 * 1024)}
        )
    with pytest.raises(errors.InvalidS3ObjectException):
        rekognition.compare_faces(SourceImage=face, TargetImage=s3_image("missing"))
    with pytest.raises(errors.InvalidS3ObjectException):
        rekognition.compare_faces(
            SourceImage=face, TargetImage={"S3Object": {"Bucket": "no-such-bucket", "Name": "x"}}
        )
    with pytest.raises(errors.ClientError) as bad:  # AWS validates the model's range
        rekognition.compare_faces(SourceImage=face, TargetImage=face, SimilarityThreshold=101)
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(errors.InvalidParameterException, match="target"):
        rekognition.compare_faces(SourceImage=face, TargetImage={"Bytes": samples["blank"]})


def test_s3_object_over_15_mb_is_too_large(rekognition: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="photos/huge.jpg", Body=bytes(15 * 1024 * 1024 + 1))
    with pytest.raises(rekognition.exceptions.ImageTooLargeException):
        rekognition.detect_faces(Image=s3_image("huge.jpg"))


def test_detect_faces(rekognition: Any, samples: dict[str, bytes], bucket: str) -> None:
    details = rekognition.detect_faces(Image=s3_image("pair"))["FaceDetails"]
    assert len(details) == 2
    for detail in details:
        assert_box(detail["BoundingBox"])
        assert detail["Confidence"] > 90
        assert set(detail["Pose"]) == {"Roll", "Yaw", "Pitch"}
    assert rekognition.detect_faces(Image={"Bytes": samples["blank"]})["FaceDetails"] == []


def test_exif_orientation_is_applied(rekognition: Any, samples: dict[str, bytes]) -> None:
    upright = Image.open(io.BytesIO(samples["hopper"]))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the stored pixels lie on their side
    sideways = jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    [a] = rekognition.detect_faces(Image={"Bytes": samples["hopper"]})["FaceDetails"]
    [b] = rekognition.detect_faces(Image={"Bytes": sideways})["FaceDetails"]
    for side in ("Left", "Top", "Width", "Height"):
        assert a["BoundingBox"][side] == pytest.approx(b["BoundingBox"][side], abs=0.03)


def test_large_photo_boxes_are_ratios_of_the_original(
    rekognition: Any, samples: dict[str, bytes]
) -> None:
    hopper = Image.open(io.BytesIO(samples["hopper"]))
    big = jpeg(hopper.resize((hopper.width * 4, hopper.height * 4)))
    [a] = rekognition.detect_faces(Image={"Bytes": samples["hopper"]})["FaceDetails"]
    [b] = rekognition.detect_faces(Image={"Bytes": big})["FaceDetails"]
    for side in ("Left", "Top", "Width", "Height"):
        assert a["BoundingBox"][side] == pytest.approx(b["BoundingBox"][side], abs=0.03)


def test_collection_lifecycle(rekognition: Any) -> None:
    errors = rekognition.exceptions
    ids = [f"lifecycle-{n}" for n in range(3)]
    for collection_id in ids:
        created = rekognition.create_collection(CollectionId=collection_id)
        assert created["StatusCode"] == 200
        assert created["CollectionArn"].endswith(f"collection/{collection_id}")
    with pytest.raises(errors.ResourceAlreadyExistsException):
        rekognition.create_collection(CollectionId=ids[0])
    described = rekognition.describe_collection(CollectionId=ids[0])
    assert described["FaceCount"] == 0 and described["CreationTimestamp"]
    pages = rekognition.get_paginator("list_collections").paginate(PaginationConfig={"PageSize": 2})
    listed = [cid for page in pages for cid in page["CollectionIds"]]
    assert [cid for cid in listed if cid.startswith("lifecycle-")] == ids
    for collection_id in ids:
        assert rekognition.delete_collection(CollectionId=collection_id)["StatusCode"] == 200
    with pytest.raises(errors.ResourceNotFoundException):
        rekognition.describe_collection(CollectionId=ids[0])
    with pytest.raises(errors.ResourceNotFoundException):
        rekognition.delete_collection(CollectionId=ids[0])
    with pytest.raises(errors.ClientError) as bad:
        rekognition.create_collection(CollectionId="has space")
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_index_list_search_delete_faces(rekognition: Any, bucket: str) -> None:
    errors = rekognition.exceptions
    cid = "index-search"
    rekognition.create_collection(CollectionId=cid)
    try:
        indexed = rekognition.index_faces(
            CollectionId=cid, Image=s3_image("astronaut"), ExternalImageId="astronaut"
        )
        [record] = indexed["FaceRecords"]
        assert record["Face"]["ExternalImageId"] == "astronaut"
        assert record["Face"]["FaceId"] and record["Face"]["ImageId"]
        assert_box(record["Face"]["BoundingBox"])
        capped = rekognition.index_faces(
            CollectionId=cid, Image=s3_image("pair"), ExternalImageId="pair:1", MaxFaces=1
        )
        assert len(capped["FaceRecords"]) == 1
        assert capped["UnindexedFaces"][0]["Reasons"] == ["EXCEEDS_MAX_FACES"]
        rekognition.index_faces(CollectionId=cid, Image=s3_image("hopper"), ExternalImageId="gh")
        assert rekognition.describe_collection(CollectionId=cid)["FaceCount"] == 3

        pages = rekognition.get_paginator("list_faces").paginate(
            CollectionId=cid, PaginationConfig={"PageSize": 1}
        )
        faces = [face for page in pages for face in page["Faces"]]
        assert len(faces) == 3 and len({f["FaceId"] for f in faces}) == 3

        found = rekognition.search_faces_by_image(
            CollectionId=cid, Image=s3_image("astronaut_small"), FaceMatchThreshold=80
        )
        assert_box(found["SearchedFaceBoundingBox"])
        assert found["SearchedFaceConfidence"] > 90
        labels = [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]]
        assert labels == ["astronaut"]
        assert found["FaceMatches"][0]["Similarity"] >= 99
        loose = rekognition.search_faces_by_image(
            CollectionId=cid, Image=s3_image("astronaut_small"), FaceMatchThreshold=0, MaxFaces=2
        )
        assert len(loose["FaceMatches"]) == 2

        deleted = rekognition.delete_faces(
            CollectionId=cid,
            FaceIds=[record["Face"]["FaceId"], "00000000-0000-0000-0000-000000000000"],
        )
        assert deleted["DeletedFaces"] == [record["Face"]["FaceId"]]
        assert deleted["UnsuccessfulFaceDeletions"] == [
            {"FaceId": "00000000-0000-0000-0000-000000000000", "Reasons": ["FACE_NOT_FOUND"]}
        ]
        again = rekognition.search_faces_by_image(CollectionId=cid, Image=s3_image("astronaut"))
        assert again["FaceMatches"] == []

        with pytest.raises(errors.ClientError) as bad:
            rekognition.index_faces(
                CollectionId=cid, Image=s3_image("hopper"), ExternalImageId="grace hopper"
            )
        assert bad.value.response["Error"]["Code"] == "ValidationException"
        with pytest.raises(errors.InvalidParameterException):
            rekognition.search_faces_by_image(CollectionId=cid, Image=s3_image("blank"))
        blank = rekognition.index_faces(CollectionId=cid, Image=s3_image("blank"))
        assert blank["FaceRecords"] == []
    finally:
        rekognition.delete_collection(CollectionId=cid)
    with pytest.raises(errors.ResourceNotFoundException):
        rekognition.index_faces(CollectionId=cid, Image=s3_image("hopper"))
    with pytest.raises(errors.ResourceNotFoundException):
        rekognition.search_faces_by_image(CollectionId=cid, Image=s3_image("hopper"))
    with pytest.raises(errors.ResourceNotFoundException):
        rekognition.list_faces(CollectionId=cid)


def test_one_upload_against_many_references_is_analysed_once(
    embedded: EmbeddedAWS, rekognition: Any, s3: Any, samples: dict[str, bytes], bucket: str
) -> None:
    for n in range(5):  # the same photo under five keys: five references, five analyses
        s3.put_object(Bucket=bucket, Key=f"refs/{n}.png", Body=samples["astronaut"])
    upload = jpeg(Image.open(io.BytesIO(samples["pair"])), comment=b"fresh")
    s3.put_object(Bucket=bucket, Key="uploads/new.jpg", Body=upload)
    cache = embedded.backend.cache
    before = cache.misses
    threads = [
        threading.Thread(
            target=rekognition.compare_faces,
            kwargs={
                "SourceImage": {"S3Object": {"Bucket": bucket, "Name": f"refs/{n}.png"}},
                "TargetImage": {"S3Object": {"Bucket": bucket, "Name": "uploads/new.jpg"}},
            },
        )
        for n in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.misses - before == 6  # 5 references + 1 upload, although 5 calls ran at once
    # A new object under the same key (another ETag) is analysed again.
    s3.put_object(Bucket=bucket, Key="uploads/new.jpg", Body=samples["hopper"])
    answer = rekognition.compare_faces(
        SourceImage={"S3Object": {"Bucket": bucket, "Name": "refs/0.png"}},
        TargetImage={"S3Object": {"Bucket": bucket, "Name": "uploads/new.jpg"}},
    )
    assert answer["FaceMatches"] == []
    assert cache.misses - before == 7


def test_other_services_share_the_endpoint(embedded: EmbeddedAWS) -> None:
    sqs, sns = embedded.client("sqs"), embedded.client("sns")
    queue_url = sqs.create_queue(QueueName="engine-edge")["QueueUrl"]
    topic = sns.create_topic(Name="engine-edge")["TopicArn"]
    sqs_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=sqs_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    sns.publish(TopicArn=topic, Message="hello")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert messages[0]["Body"] == "hello"


def test_environment_points_boto3_at_the_endpoint(
    embedded: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    env = embedded.environment()
    assert env["AWS_ENDPOINT_URL"] == embedded.endpoint_url
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert set(env) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    assert os.environ["AWS_ENDPOINT_URL"] == embedded.endpoint_url
    rekognition = boto3.client("rekognition")
    assert "CollectionIds" in rekognition.list_collections()
    boto3.client("s3").list_buckets()
