"""The calls AWS's published Rekognition face examples make, through boto3, with every answer
checked against botocore's service model (the ``rekognition`` fixture), plus the error
semantics AWS has for each kind of bad request.

AWS's examples replayed as they are written, and the AWS CLI's commands:
tests/engine/test_aws_examples.py.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from tests.engine.conftest import jpeg
from tests.engine.shapes import problems
from worker.local.engine.models import pose, quality

DEFAULT_FIELDS = {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}


def code(error: pytest.ExceptionInfo[Any]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_shape_checker_finds_breaks() -> None:
    assert problems("DescribeCollection", {"FaceCount": 1, "CreationTimestamp": 1.0}) == []
    found = problems(
        "DetectFaces",
        {"FaceDetails": [{"Pose": {"Yaw": 200}, "Landmarks": [{"Type": "chin"}], "Bogus": 1}]},
    )
    assert any("Yaw" in p and "max" in p for p in found)
    assert any("'chin' not in enum" in p for p in found)
    assert any("Bogus: unknown member" in p for p in found)
    assert problems("DeleteFaces", {"UnsuccessfulFaceDeletions": [{"Reasons": "x"}]})


def test_detect_faces_default_and_all(rekognition: Any, samples: dict[str, bytes]) -> None:
    image = {"Bytes": samples["pair"]}
    default = rekognition.detect_faces(Image=image)["FaceDetails"]
    everything = rekognition.detect_faces(Image=image, Attributes=["ALL"])["FaceDetails"]
    assert len(default) == 2
    for face in default:
        assert set(face) == DEFAULT_FIELDS
        assert 0 < face["Quality"]["Brightness"] < 100 and 0 < face["Quality"]["Sharpness"] <= 100
        assert face["Pose"]["Yaw"] != 0.0 and face["Pose"]["Pitch"] != 0.0
    # ALL: DEFAULT plus what the engine's networks compute (AgeRange, Gender), nothing else.
    for face, full in zip(default, everything, strict=True):
        assert set(full) == DEFAULT_FIELDS | {"AgeRange", "Gender"}
        assert {name: full[name] for name in DEFAULT_FIELDS} == face
    with pytest.raises(rekognition.exceptions.ClientError) as bad:
        rekognition.detect_faces(Image=image, Attributes=["BOGUS"])
    assert code(bad) == "ValidationException"
    assert "enum value set" in bad.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("attributes", "added"),
    [
        ([], set()),
        (["DEFAULT"], set()),
        (["AGE_RANGE"], {"AgeRange"}),
        (["DEFAULT", "GENDER"], {"Gender"}),
        (["ALL", "DEFAULT"], {"AgeRange", "Gender"}),
        (["SMILE", "EMOTIONS"], set()),  # asked for, not computed: absent
    ],
)
def test_single_attributes_add_their_member(
    rekognition: Any, samples: dict[str, bytes], attributes: list[str], added: set[str]
) -> None:
    image = {"Bytes": samples["astronaut"]}
    [face] = rekognition.detect_faces(Image=image, Attributes=attributes)["FaceDetails"]
    assert set(face) == DEFAULT_FIELDS | added


def test_compare_faces_reports_quality_and_pose(
    rekognition: Any, samples: dict[str, bytes]
) -> None:
    answer = rekognition.compare_faces(
        SourceImage={"Bytes": samples["hopper"]},
        TargetImage={"Bytes": samples["pair"]},
        SimilarityThreshold=0,
    )
    for match in answer["FaceMatches"]:
        assert set(match["Face"]) == DEFAULT_FIELDS


def test_collection_example_flow(rekognition: Any, samples: dict[str, bytes]) -> None:
    """create, describe, index (several), list with paging, search by image and by face id,
    delete faces, delete collection: what AWS's collection example does, in its order."""
    errors = rekognition.exceptions
    cid = "compat-flow"
    rekognition.create_collection(CollectionId=cid)
    try:
        ids = {}
        for name in ("astronaut", "hopper", "pair"):
            answer = rekognition.index_faces(
                CollectionId=cid,
                Image={"Bytes": samples[name]},
                ExternalImageId=name,
                DetectionAttributes=["ALL"],
                QualityFilter="AUTO",
            )
            ids[name] = [r["Face"]["FaceId"] for r in answer["FaceRecords"]]
        assert len(ids["pair"]) == 2
        assert rekognition.describe_collection(CollectionId=cid)["FaceCount"] == 4

        pages = list(
            rekognition.get_paginator("list_faces").paginate(
                CollectionId=cid, PaginationConfig={"PageSize": 3}
            )
        )
        assert [len(p["Faces"]) for p in pages] == [3, 1]
        with pytest.raises(errors.InvalidPaginationTokenException):
            rekognition.list_faces(CollectionId=cid, NextToken="garbage")
        with pytest.raises(errors.InvalidPaginationTokenException):
            rekognition.list_collections(NextToken="garbage")

        by_image = rekognition.search_faces_by_image(
            CollectionId=cid, Image={"Bytes": samples["astronaut_small"]}
        )
        assert {m["Face"]["ExternalImageId"] for m in by_image["FaceMatches"]} == {
            "astronaut",
            "pair",
        }
        [astronaut] = ids["astronaut"]
        by_id = rekognition.search_faces(CollectionId=cid, FaceId=astronaut)
        assert by_id["SearchedFaceId"] == astronaut
        [match] = by_id["FaceMatches"]
        assert match["Face"]["ExternalImageId"] == "pair" and match["Similarity"] >= 99
        loose = rekognition.search_faces(
            CollectionId=cid, FaceId=astronaut, FaceMatchThreshold=0, MaxFaces=2
        )
        assert len(loose["FaceMatches"]) == 2
        with pytest.raises(errors.InvalidParameterException):
            rekognition.search_faces(
                CollectionId=cid, FaceId="00000000-0000-0000-0000-000000000000"
            )

        every = [f["FaceId"] for page in pages for f in page["Faces"]]
        deleted = rekognition.delete_faces(CollectionId=cid, FaceIds=every)
        assert sorted(deleted["DeletedFaces"]) == sorted(every)
        assert deleted["UnsuccessfulFaceDeletions"] == []
    finally:
        rekognition.delete_collection(CollectionId=cid)
    with pytest.raises(errors.ResourceNotFoundException):
        rekognition.search_faces(CollectionId=cid, FaceId="00000000-0000-0000-0000-000000000000")


def test_quality_filter_gives_reasons(rekognition: Any, samples: dict[str, bytes]) -> None:
    hopper = Image.open(io.BytesIO(samples["hopper"]))
    dark = jpeg(hopper.point(lambda v: v * 0.15))  # face brightness about 7.6
    cid = "compat-quality"
    rekognition.create_collection(CollectionId=cid)
    try:
        none = rekognition.index_faces(
            CollectionId=cid, Image={"Bytes": dark}, QualityFilter="NONE"
        )
        high = rekognition.index_faces(
            CollectionId=cid, Image={"Bytes": dark}, QualityFilter="HIGH"
        )
    finally:
        rekognition.delete_collection(CollectionId=cid)
    assert len(none["FaceRecords"]) == 1
    assert high["FaceRecords"] == []
    assert "LOW_BRIGHTNESS" in high["UnindexedFaces"][0]["Reasons"]


def test_raw_errors_and_unknown_operation(embedded: Any) -> None:
    import urllib.error
    import urllib.request

    def call(action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            embedded.endpoint_url,
            data=json.dumps(body).encode(),
            headers={
                "X-Amz-Target": f"RekognitionService.{action}",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, body = call("DescribeCollection", {})
    assert status == 400 and body["__type"] == "ValidationException"
    assert "collectionId" in body["Message"]
    status, body = call("ListFaces", {"CollectionId": "x", "MaxResults": 5000})
    assert body["__type"] == "ValidationException"
    status, body = call("ListCollections", {"MaxResults": "many"})
    assert body["__type"] == "SerializationException"


def test_pose_from_landmarks() -> None:
    roll, yaw, pitch = pose((100, 100), (200, 100), (150, 174))
    assert (roll, yaw) == (0.0, 0.0) and abs(pitch) < 1
    _, turned, _ = pose((100, 100), (200, 100), (120, 174))
    assert turned > 30
    _, _, down = pose((100, 100), (200, 100), (150, 100 + 74 * 1.3))
    assert down < -10
    tilted_roll, tilted_yaw, _ = pose((100, 100), (200, 200), (100, 200))
    assert tilted_roll == pytest.approx(45) and abs(tilted_yaw) < 1


def test_quality_from_pixels() -> None:
    import numpy as np

    flat = np.full((80, 80), 128, dtype=np.float32)
    brightness, sharpness = quality(flat)
    assert brightness == pytest.approx(50.2, abs=0.1) and sharpness == 0.0
    noisy = np.random.default_rng(0).uniform(0, 255, (80, 80)).astype(np.float32)
    assert quality(noisy)[1] > 99
