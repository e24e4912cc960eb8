"""AWS's published Rekognition face examples, replayed against the engine.

The calls are the ones the examples make, with the arguments they pass, and the answers are read
the way the examples read them (awsdocs/aws-doc-sdk-examples, python/example_code/rekognition:
``rekognition_image_detection.py``, ``rekognition_collections.py``, ``rekognition_objects.py``;
and the Developer Guide's ``python-detect-faces.py``, which indexes ``AgeRange`` directly):

- through boto3, where every raw answer is checked against botocore's service model (the
  ``rekognition`` fixture);
- through the AWS CLI's ``aws rekognition`` commands (the ``awscli`` of the dev extra), whose JSON
  output is checked against the same model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import REGION
from tests.engine.shapes import problems

BUCKET = "aws-examples"
DEFAULT_FIELDS = {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
ALL_FIELDS = DEFAULT_FIELDS | {"AgeRange", "Gender"}
# What the examples' RekognitionFace reads with .get(name, {}).get("Value"): absent here.
YES_NO = ("Smile", "Eyeglasses", "Sunglasses", "Beard", "Mustache", "EyesOpen", "MouthOpen")
AWS = Path(sys.executable).with_name("aws")


@pytest.fixture(scope="module")
def bucket(s3: Any, samples: dict[str, bytes]) -> str:
    s3.create_bucket(Bucket=BUCKET)
    for name, data in samples.items():
        s3.put_object(Bucket=BUCKET, Key=name, Body=data)
    return BUCKET


def as_example_reads(face: dict[str, Any]) -> dict[str, Any]:
    """A face read as the examples' ``RekognitionFace`` reads it: every attribute with
    ``.get``, AgeRange as a (Low, High) pair, emotions above 50 % confidence."""
    age = face.get("AgeRange")
    return {
        "bounding_box": face.get("BoundingBox"),
        "age": (age.get("Low"), age.get("High")) if age is not None else None,
        "gender": face.get("Gender", {}).get("Value"),
        "has": [name for name in YES_NO if face.get(name, {}).get("Value")],
        "emotions": [
            e.get("Type") for e in face.get("Emotions", []) if e.get("Confidence", 0) > 50
        ],
        "face_id": face.get("FaceId"),
        "image_id": face.get("ImageId"),
    }


def test_detect_faces_example(rekognition: Any, bucket: str) -> None:
    """python-detect-faces.py: an S3 image with Attributes=["ALL"], then
    ``faceDetail['AgeRange']['Low']`` and ``['High']`` and a JSON dump of each face."""
    image = {"S3Object": {"Bucket": bucket, "Name": "pair"}}
    details = rekognition.detect_faces(Image=image, Attributes=["ALL"])["FaceDetails"]
    assert len(details) == 2
    for detail in details:
        low, high = detail["AgeRange"]["Low"], detail["AgeRange"]["High"]
        assert 0 <= low <= high <= 80
        json.dumps(detail, indent=4, sort_keys=True)
        assert set(detail) == ALL_FIELDS
        read = as_example_reads(detail)
        assert read["gender"] in {"Male", "Female"} and read["has"] == [] and read["emotions"] == []


def test_compare_faces_example(rekognition: Any, samples: dict[str, bytes]) -> None:
    """RekognitionImage.compare_faces: Bytes against Bytes at similarity 80; matches and
    non-matches read as RekognitionFace."""
    answer = rekognition.compare_faces(
        SourceImage={"Bytes": samples["hopper"]},
        TargetImage={"Bytes": samples["pair"]},
        SimilarityThreshold=80,
    )
    matches = [as_example_reads(match["Face"]) for match in answer["FaceMatches"]]
    unmatched = [as_example_reads(face) for face in answer["UnmatchedFaces"]]
    assert len(matches) == 1 and len(unmatched) == 1
    assert matches[0]["bounding_box"]["Left"] > unmatched[0]["bounding_box"]["Left"]


def test_collection_example(rekognition: Any, samples: dict[str, bytes]) -> None:
    """rekognition_collections.usage_demo, in its order: create, describe, index three images
    (MaxFaces 10, DetectionAttributes ALL), list, search by face id, search by image, delete
    faces, delete the collection; with paging by MaxResults/NextToken one item at a time."""
    cid = "doc-example-collection-demo"
    created = rekognition.create_collection(CollectionId=cid)
    try:
        assert created["CollectionArn"].endswith(f"collection/{cid}")
        described = rekognition.describe_collection(CollectionId=cid)
        assert described.get("CollectionARN") == created["CollectionArn"]
        assert described.get("FaceCount", 0) == 0 and described.get("CreationTimestamp")

        indexed = []
        for name in ("astronaut", "hopper", "pair"):
            answer = rekognition.index_faces(
                CollectionId=cid,
                Image={"Bytes": samples[name]},
                ExternalImageId=name,
                MaxFaces=10,
                DetectionAttributes=["ALL"],
            )
            indexed += [
                as_example_reads({**record["Face"], **record["FaceDetail"]})
                for record in answer["FaceRecords"]
            ]
            assert [as_example_reads(f["FaceDetail"]) for f in answer["UnindexedFaces"]] == []
        assert len(indexed) == 4
        assert all(face["face_id"] and face["age"] and face["gender"] for face in indexed)

        listed = [
            as_example_reads(f)
            for f in rekognition.list_faces(CollectionId=cid, MaxResults=10)["Faces"]
        ]
        assert {f["face_id"] for f in listed} == {f["face_id"] for f in indexed}
        assert one_at_a_time(rekognition.list_faces, "Faces", CollectionId=cid) == [
            f["face_id"] for f in listed
        ]

        first = listed[0]["face_id"]
        found = rekognition.search_faces(
            CollectionId=cid, FaceId=first, FaceMatchThreshold=80, MaxFaces=10
        )
        assert first not in {match["Face"]["FaceId"] for match in found["FaceMatches"]}

        answer = rekognition.search_faces_by_image(
            CollectionId=cid,
            Image={"Bytes": samples["astronaut"]},
            FaceMatchThreshold=80,
            MaxFaces=10,
        )
        searched = as_example_reads(
            {
                "BoundingBox": answer["SearchedFaceBoundingBox"],
                "Confidence": answer["SearchedFaceConfidence"],
            }
        )
        assert searched["bounding_box"]["Width"] > 0
        matched = [as_example_reads(match["Face"]) for match in answer["FaceMatches"]]
        assert len(matched) == 2  # the astronaut alone and in the pair

        deleted = rekognition.delete_faces(CollectionId=cid, FaceIds=[f["face_id"] for f in listed])
        assert sorted(deleted["DeletedFaces"]) == sorted(f["face_id"] for f in listed)
    finally:
        rekognition.delete_collection(CollectionId=cid)


def test_list_collections_example_pages(rekognition: Any) -> None:
    """RekognitionCollectionManager.list_collections(max_results), paged one by one."""
    ids = [f"doc-example-page-{n}" for n in range(3)]
    for cid in ids:
        rekognition.create_collection(CollectionId=cid)
    try:
        first = rekognition.list_collections(MaxResults=2)
        assert len(first["CollectionIds"]) == 2 and first["NextToken"]
        assert set(ids) <= set(one_at_a_time(rekognition.list_collections, "CollectionIds"))
    finally:
        for cid in ids:
            rekognition.delete_collection(CollectionId=cid)


def one_at_a_time(call: Any, key: str, **params: Any) -> list[Any]:
    """Every item of a listing, fetched with MaxResults=1 and NextToken."""
    items: list[Any] = []
    token: str | None = None
    while True:
        page = call(MaxResults=1, **params, **({"NextToken": token} if token else {}))
        items += [item["FaceId"] if isinstance(item, dict) else item for item in page[key]]
        token = page.get("NextToken")
        if not token:
            return items


# -- the AWS CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(embedded: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``aws(operation, *args)``: run ``aws rekognition <operation>`` on the engine and return its
    JSON output, checked against botocore's model."""
    if not AWS.exists():
        pytest.skip(f"the AWS CLI is not installed beside {sys.executable} (the dev extra has it)")
    home = tmp_path_factory.mktemp("aws-cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "HOME": str(home),
    }

    def run(operation: str, *args: str) -> dict[str, Any]:
        command = [str(AWS), "rekognition", operation, *args]
        command += ["--endpoint-url", embedded.endpoint_url, "--output", "json"]
        done = subprocess.run(
            command, check=False, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
        answer: dict[str, Any] = json.loads(done.stdout or "{}")
        name = "".join(part.capitalize() for part in operation.split("-"))
        assert problems(name, answer) == [], (
            f"aws rekognition {operation}: {problems(name, answer)}"
        )
        return answer

    return run


@pytest.mark.slow
def test_aws_cli_rekognition_commands(
    aws: Any, bucket: str, samples: dict[str, bytes], tmp_path: Path
) -> None:
    """The same calls through ``aws rekognition``: images as S3 objects and as ``fileb://``
    bytes, listings paged by the CLI itself (``--page-size 1``)."""
    for name in ("hopper", "pair"):
        (tmp_path / f"{name}.jpg").write_bytes(samples[name])
    hopper, pair = f"fileb://{tmp_path / 'hopper.jpg'}", f"fileb://{tmp_path / 'pair.jpg'}"
    s3_astronaut = json.dumps({"S3Object": {"Bucket": bucket, "Name": "astronaut"}})

    detected = aws("detect-faces", "--image-bytes", pair, "--attributes", "ALL")
    assert [set(face) for face in detected["FaceDetails"]] == [ALL_FIELDS, ALL_FIELDS]
    compared = aws("compare-faces", "--source-image-bytes", hopper, "--target-image-bytes", pair)
    assert len(compared["FaceMatches"]) == 1 and len(compared["UnmatchedFaces"]) == 1

    cid = "aws-cli-example"
    aws("create-collection", "--collection-id", cid)
    try:
        assert aws("describe-collection", "--collection-id", cid)["FaceCount"] == 0
        assert cid in aws("list-collections", "--page-size", "1")["CollectionIds"]
        records = aws(
            "index-faces", "--collection-id", cid, "--image", s3_astronaut,
            "--external-image-id", "astronaut", "--detection-attributes", "ALL", "--max-faces", "10",
        )["FaceRecords"]  # fmt: skip
        records += aws(
            "index-faces", "--collection-id", cid, "--image-bytes", pair,
            "--external-image-id", "pair", "--detection-attributes", "DEFAULT",
        )["FaceRecords"]  # fmt: skip
        assert [set(r["FaceDetail"]) for r in records] == [
            ALL_FIELDS,
            DEFAULT_FIELDS,
            DEFAULT_FIELDS,
        ]
        ids = [record["Face"]["FaceId"] for record in records]
        listed = aws("list-faces", "--collection-id", cid, "--page-size", "1")["Faces"]
        assert sorted(face["FaceId"] for face in listed) == sorted(ids)
        by_id = aws("search-faces", "--collection-id", cid, "--face-id", ids[0])
        assert [m["Face"]["ExternalImageId"] for m in by_id["FaceMatches"]] == ["pair"]
        by_image = aws("search-faces-by-image", "--collection-id", cid, "--image", s3_astronaut)
        assert len(by_image["FaceMatches"]) == 2
        deleted = aws("delete-faces", "--collection-id", cid, "--face-ids", *ids)
        assert sorted(deleted["DeletedFaces"]) == sorted(ids)
    finally:
        aws("delete-collection", "--collection-id", cid)
