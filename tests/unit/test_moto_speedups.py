"""worker.local.moto_speedups: moto answers exactly as before, with less work per request."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from worker.local import moto_speedups

REGION = "us-east-1"
RETENTION_S = 60


@pytest.fixture(scope="module", autouse=True)
def _applied() -> None:
    moto_speedups.apply()
    moto_speedups.apply()  # idempotent


def test_moto_modules_are_listed_once_and_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.backends

    assert moto_speedups._original_modules is not None
    expected = list(moto_speedups._original_modules())
    moto.backends.list_of_moto_modules()  # the one listing
    listings: list[str] = []
    real_listdir = os.listdir

    def counting_listdir(path: Any) -> list[str]:
        listings.append(str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", counting_listdir)
    for _ in range(3):
        assert list(moto.backends.list_of_moto_modules()) == expected
    assert listings == []
    assert "s3" in moto.backends.list_of_moto_modules()
    assert "sqs" in moto.backends.list_of_moto_modules()


@mock_aws
def test_receive_keeps_moto_retention_rule() -> None:
    """A message past the queue's retention period is not received; a fresh one is — the same
    verdict as moto's own check gives for both."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": str(RETENTION_S)})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="new")
    sqs.send_message(QueueUrl=url, MessageBody="old")
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    new, old = backend.get_queue("q")._messages
    old.sent_timestamp -= (RETENTION_S + 1) * 1000
    stock = moto_speedups._stock_retention_check
    assert stock is not None
    for message, kept in ((old, False), (new, True)):
        assert stock(backend, "q", message) is kept
        assert backend.is_message_valid_based_on_retention_period("q", message) is kept

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["new"]


@mock_aws
def test_notifications_are_signed_with_one_key_and_verify() -> None:
    """Every subscription signs with the process's one key; each notification's signature still
    verifies against the certificate its SigningCertURL names."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="results")["TopicArn"]
    urls = [sqs.create_queue(QueueName=f"subscriber{i}")["QueueUrl"] for i in range(2)]
    for url in urls:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    sns.publish(TopicArn=topic, Message="hello")  # no Subject: AWS would sign that too, moto not

    backend = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    subscriptions = list(backend.subscriptions.values())
    assert len(subscriptions) == 2
    assert subscriptions[0].private_key() is subscriptions[1].private_key()
    assert subscriptions[0].private_key() is moto_speedups.signing_key()
    for url in urls:
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        envelope = json.loads(message["Body"])
        pem = backend._message_public_keys[envelope["SigningCertURL"].rsplit("/", 1)[1]]
        certificate = x509.load_pem_x509_certificate(pem)
        signed = "".join(
            f"{name}\n{envelope[name]}\n"
            for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
        )
        certificate.public_key().verify(  # raises InvalidSignature when it does not
            base64.b64decode(envelope["Signature"]),
            signed.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
