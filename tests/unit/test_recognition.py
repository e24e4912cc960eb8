import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from worker.aws import retry
from worker.errors import InvalidImageError, NoFaceError, RetryableError, ThrottledError
from worker.outcomes import retry_delay
from worker.recognition.client import Rekognition
from worker.telemetry.metrics import Metrics


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "CompareFaces",
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("ThrottlingException"), ThrottledError),
        (client_error("ProvisionedThroughputExceededException"), ThrottledError),
        (client_error("InternalServerError", 500), RetryableError),
        (client_error("Whatever", 503), RetryableError),
        (EndpointConnectionError(endpoint_url="http://x"), RetryableError),
        (client_error("InvalidImageFormatException"), InvalidImageError),
        (client_error("ImageTooLargeException"), InvalidImageError),
        (client_error("InvalidParameterException"), NoFaceError),
    ],
)
def test_translation(error: Exception, kind: type) -> None:
    assert isinstance(retry.translate(error), kind)


def test_permanent_errors_are_not_retryable() -> None:
    for code in (
        "InvalidImageFormatException",
        "InvalidS3ObjectException",
        "AccessDeniedException",
    ):
        assert not isinstance(retry.translate(client_error(code)), RetryableError)


def test_throttled_calls_are_retried_then_succeed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BACKOFF_MULTIPLIER", 0.0)
    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    for _ in range(3):
        stubber.add_client_error("detect_faces", "ThrottlingException", http_status_code=400)
    stubber.add_response("detect_faces", {"FaceDetails": [{"BoundingBox": {"Left": 0.5}}]})
    metrics = Metrics()
    with stubber:
        boxes = Rekognition(client, metrics=metrics).detect_faces({"Bytes": b"x"})
    assert [b.left for b in boxes] == [0.5]
    assert metrics.count("RekognitionThrottles") == 3
    assert metrics.count("RekognitionRetries") == 3
    assert metrics.count("RekognitionCalls") == 4


def test_permanent_errors_fail_at_once() -> None:
    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("detect_faces", "InvalidImageFormatException")
    metrics = Metrics()
    with stubber, pytest.raises(InvalidImageError):
        Rekognition(client, metrics=metrics).detect_faces({"Bytes": b"x"})
    assert metrics.count("RekognitionCalls") == 1


def test_message_backoff_grows_and_is_capped() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert retry_delay(50) == 900.0
