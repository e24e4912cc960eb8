"""The SNS edge: one publish per upload, JSON message structure, filterable attributes.

``MessageStructure=json`` gives each protocol its own text (``sqs``/``default``: the record,
``email``: a text for people). The ``status`` and ``labels`` attributes are for subscription filter
policies only: AWS delivers attributes "only when the message structure is String, not JSON"
(https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html), so subscribers read the
same facts from the record. What each protocol receives: docs/sns-subscribers.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from worker import render
from worker.aws.errors import translate
from worker.results import ResultRecord

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class Publisher:
    def __init__(self, sns: SNSClient, topic_arn: str) -> None:
        self._sns, self._topic = sns, topic_arn

    def publish(self, record: ResultRecord) -> str:
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
