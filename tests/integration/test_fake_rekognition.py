"""The fake Rekognition itself (tests/support): the engine's answers over coloured squares, each
checked against botocore's model, and the faults its middleware injects, through boto3."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.engine.shapes import check_answers
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, face_png


@pytest.fixture(scope="module")
def fake(moto_endpoint: str) -> Iterator[FakeRekognition]:
    fake = FakeRekognition(moto_endpoint).start()
    yield fake
    fake.stop()


@pytest.fixture
def rekognition(fake: FakeRekognition) -> Iterator[Any]:
    fake.reset()
    yield check_answers(
        boto3.client(
            "rekognition",
            endpoint_url=fake.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
    )
    fake.reset()


def image(*faces: tuple[int, int, int]) -> dict[str, bytes]:
    return {"Bytes": face_png(*faces)}


def code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return str(caught.value.response["Error"]["Code"])


def test_answers_follow_the_model_and_the_image(rekognition: Any) -> None:
    details = rekognition.detect_faces(Image=image(BOB, ALICE))["FaceDetails"]
    assert [round(d["BoundingBox"]["Left"], 3) for d in details] == [0.042, 0.333]
    answer = rekognition.compare_faces(SourceImage=image(ALICE), TargetImage=image(BOB, ALICE))
    (match,) = answer["FaceMatches"]
    assert match["Similarity"] == pytest.approx(99.3)
    assert match["Face"]["BoundingBox"]["Left"] > answer["UnmatchedFaces"][0]["BoundingBox"]["Left"]
    # "If no faces are detected in the source or target images, CompareFaces returns an
    # InvalidParameterException error" (API_CompareFaces).
    call = rekognition.compare_faces
    assert code(call, SourceImage=image(ALICE), TargetImage=image()) == "InvalidParameterException"


def test_collections_search_by_colour(rekognition: Any) -> None:
    rekognition.create_collection(CollectionId="people")
    for name, colour in (("alice", ALICE), ("bob", BOB)):
        rekognition.index_faces(
            CollectionId="people", Image=image(colour), ExternalImageId=name, MaxFaces=1
        )
    found = rekognition.search_faces_by_image(CollectionId="people", Image=image(BOB, ALICE))
    assert [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]] == ["bob"]


def test_injected_faults_and_counters(fake: FakeRekognition, rekognition: Any) -> None:
    detect = rekognition.detect_faces
    fake.throttle(2)
    assert [code(detect, Image=image(ALICE)) for _ in range(2)] == ["ThrottlingException"] * 2
    assert len(detect(Image=image(ALICE))["FaceDetails"]) == 1
    fake.set_rates(error_rate=1.0)
    assert code(detect, Image=image(ALICE)) == "InternalServerError"
    fake.set_rates(error_rate=0.0)
    fake.known_actions = {"CompareFaces"}
    assert code(detect, Image=image(ALICE)) == "UnknownOperationException"
    fake.known_actions = None
    fake.unreadable_keys.add("secret.png")
    s3_image = {"S3Object": {"Bucket": "any", "Name": "secret.png"}}
    assert code(detect, Image=s3_image) == "InvalidS3ObjectException"
    assert fake.calls == {"DetectFaces": 6, "Throttled": 2, "Failed": 1}

    request = urllib.request.Request(f"{fake.endpoint}/_control", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        state = json.loads(response.read())
    assert state["calls"] == {"DetectFaces": 6, "Throttled": 2, "Failed": 1, "Admitted": 4}
