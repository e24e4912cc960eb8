"""The crash windows of the publish sequence, replayed with real boto3 clients on mock_aws."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from tests.records import a_record
from worker.app import build_pipeline
from worker.aws.clients import make_clients
from worker.outcomes import Ack
from worker.settings import load_settings
from worker.telemetry.metrics import Metrics


def event(key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "photos"}, "object": {"key": quote_plus(key)}},
                }
            ]
        }
    )


@mock_aws
def test_a_record_written_but_never_published_is_published_once_by_the_next_delivery() -> None:
    s3, sns, sqs = (boto3.client(n, region_name="us-east-1") for n in ("s3", "sns", "sqs"))
    s3.create_bucket(Bucket="photos")
    topic = sns.create_topic(Name="results")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    etag = s3.put_object(Bucket="photos", Key="uploads/a b.png", Body=b"\x89PNG...")["ETag"]

    clients = make_clients()
    rekognition = Stubber(clients.rekognition)  # no answers queued: any call fails the test
    rekognition.activate()
    settings = load_settings(bucket_name="photos", sns_topic_arn=topic)
    pipeline = build_pipeline(settings, clients, Metrics())
    pipeline.publish_lease_seconds = 0  # the writer "died" longer ago than the lease

    # The state a replica leaves when it dies between writing the record and publishing it.
    record = a_record(key="uploads/a b.png", etag=etag.strip('"'))
    pipeline.store.write(record, upload_id=etag.strip('"'), sequencer=None, expect_etag=None)

    assert pipeline.handle(event("uploads/a b.png")) == Ack(reason="published a pending record")
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    published = json.loads(json.loads(messages[0]["Body"])["Message"])
    stored = pipeline.store.read("uploads/a b.png")
    assert published == stored.to_json()  # the claimed record, as stored
    assert {k: v for k, v in published.items() if k != "notification_id"} == record.to_json()
    assert stored.notification_id and stored.notification_id != record.notification_id
    assert pipeline.store.lookup("uploads/a b.png").notified

    assert pipeline.handle(event("uploads/a b.png")) == Ack(reason="duplicate")
    assert "Messages" not in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)
    rekognition.assert_no_pending_responses()
