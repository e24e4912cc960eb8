"""The engine's pure parts: the similarity scale, the detection confidence, the edge router."""

from __future__ import annotations

import pytest

from worker.local.engine.models import detection_confidence, similarity
from worker.local.engine.server import is_rekognition


def test_similarity_goes_through_the_calibration_points() -> None:
    assert similarity(0.60) == pytest.approx(80.0)
    assert similarity(0.45) == pytest.approx(99.0)
    assert similarity(0.0) > 99.99 and similarity(1.2) < 0.01


def test_similarity_falls_as_distance_grows() -> None:
    scores = [similarity(d / 100) for d in range(0, 150, 5)]
    assert scores == sorted(scores, reverse=True)


def test_detection_confidence() -> None:
    assert 95 < detection_confidence(0.0) < detection_confidence(1.0) < 100


SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/{service}/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=abc"
)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HTTP_AUTHORIZATION": SIGV4.format(service="rekognition")}, True),
        ({"HTTP_AUTHORIZATION": SIGV4.format(service="s3")}, False),
        ({"HTTP_AUTHORIZATION": SIGV4.format(service="sqs")}, False),
        ({"HTTP_X_AMZ_TARGET": "RekognitionService.CompareFaces"}, True),
        ({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, False),
        ({"HTTP_AUTHORIZATION": "AWS testing:signature"}, False),
        ({}, False),
    ],
)
def test_edge_router_picks_rekognition(environ: dict[str, str], expected: bool) -> None:
    assert is_rekognition(environ) is expected
