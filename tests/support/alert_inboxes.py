"""Where the alert tests' notifications arrive: a local HTTP receiver standing in for a Slack
incoming webhook, and an SNS topic faked by moto with an SQS queue subscribed to it (so a test
reads what was published, subject and text, through the public API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
from moto import mock_aws

from tests.support.webhook_receiver import WebhookReceiver

REGION = "eu-west-1"
TOPIC = "ai-queue-alerts"


@dataclass
class SnsInbox:
    topic_arn: str
    _queue_url: str
    _sqs: Any
    received: list[dict[str, str]] = field(default_factory=list)

    def messages(self) -> list[dict[str, str]]:
        """Every message published so far, `{"Subject", "Message"}` each, oldest first."""
        while True:
            reply = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10)
            batch = reply.get("Messages", [])
            if not batch:
                return list(self.received)
            for message in batch:
                envelope = json.loads(message["Body"])
                self.received.append(
                    {"Subject": envelope.get("Subject", ""), "Message": envelope["Message"]}
                )
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@contextmanager
def sns_inbox() -> Iterator[SnsInbox]:
    """A fake AWS for the block (credentials must be set: moto asks for any)."""
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        queue_arn = attributes["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        yield SnsInbox(topic_arn, queue_url, sqs)


def webhook_texts(receiver: WebhookReceiver) -> list[str]:
    """The `text` of every Slack-style message the receiver got, oldest first."""
    texts = []
    for request in receiver.requests:
        assert request.headers.get("content-type") == "application/json"
        texts.append(str(json.loads(request.body)["text"]))
    return texts
