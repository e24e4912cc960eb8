"""The SNS edge: one publish per upload, JSON message structure, filterable attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker import render
from worker.retry import translate

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class Publisher:
    def __init__(self, sns: SNSClient, topic_arn: str) -> None:
        self._sns, self._topic = sns, topic_arn

    def publish(self, record: dict[str, Any]) -> str:
        """Publish the record; return SNS's message id."""
        publication = render.publication(record)  # within SNS's size limit, whatever the record
        try:
            response = self._sns.publish(
                TopicArn=self._topic,
                Subject=publication.subject,
                Message=publication.message,
                MessageStructure="json",
                MessageAttributes=publication.attributes,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc
        return response["MessageId"]
