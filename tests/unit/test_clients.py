import pytest

from worker.aws.clients import USER_AGENT, make_client, make_clients


def test_aws_region_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert make_client("sqs").meta.region_name == "eu-west-1"
    assert make_clients().rekognition.meta.region_name == "eu-west-1"


def test_rekognition_and_sns_get_one_botocore_attempt_the_others_standard_retries() -> None:
    clients = make_clients()
    assert clients.rekognition.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert clients.sns.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert clients.s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}


def test_endpoints_come_from_boto3_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", "http://127.0.0.1:9999")
    clients = make_clients()
    assert clients.s3.meta.endpoint_url == "http://127.0.0.1:4566"
    assert clients.rekognition.meta.endpoint_url == "http://127.0.0.1:9999"


def test_every_client_names_the_worker_in_its_user_agent() -> None:
    clients = make_clients()
    for client in (clients.s3, clients.sqs, clients.sns, clients.rekognition, clients.s3_leased):
        assert client.meta.config.user_agent_extra == USER_AGENT
    assert make_client("sqs").meta.config.user_agent_extra == USER_AGENT
