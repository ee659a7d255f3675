"""Sending alert notifications: a Slack-compatible webhook (`ALERT_WEBHOOK_URL`, a POST of
`{"text": ...}`) and/or an SNS topic (`ALERT_SNS_TOPIC_ARN`; boto3, which the Lambda runtime
ships, imported on first use, in a thread). Both have timeouts well under the cron function's
own limit, are sent at once, and each outcome is logged; a failure is never raised: the alert
state is already recorded, and a condition that persists is announced again after the
cool-down.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from shared.alerts.conditions import Condition
from shared.alerts.state import Change, Kind
from shared.config.settings import Settings

logger = logging.getLogger("shared.alerts")

WEBHOOK_TIMEOUT_S = 5.0
SNS_CONNECT_TIMEOUT_S = 2.0
SNS_READ_TIMEOUT_S = 4.0
SNS_MAX_ATTEMPTS = 2
MAX_SUBJECT_CHARS = 100  # SNS's limit for an email subject
_ICONS = {
    Kind.FIRING: ":rotating_light:",
    Kind.STILL_FIRING: ":rotating_light:",
    Kind.RECOVERED: ":white_check_mark:",
}
_TITLES = {
    Condition.PENDING: "queue backing up",
    Condition.OLDEST_PENDING: "jobs waiting too long",
    Condition.FAILURE_RATE: "jobs failing",
    Condition.WORKERS: "too few workers",
    Condition.DAILY_COMMANDS: "Upstash commands near the daily budget",
    Condition.STORAGE: "Upstash storage nearly full",
}


@dataclass(frozen=True)
class Notification:
    condition: Condition
    kind: Kind
    subject: str
    text: str


@dataclass(frozen=True)
class Delivery:
    channel: str  # "webhook" or "sns"
    condition: Condition
    kind: Kind
    ok: bool
    detail: str  # the HTTP status, the SNS message id, or what went wrong


def notification(queue_name: str, change: Change) -> Notification:
    kind = change.kind or Kind.FIRING
    title = _TITLES[change.condition]
    lead = {
        Kind.FIRING: f"ALERT: {title}",
        Kind.STILL_FIRING: f"STILL: {title}",
        Kind.RECOVERED: f"RECOVERED: {title}",
    }[kind]
    subject = f"[{queue_name}] {lead}"[:MAX_SUBJECT_CHARS]
    text = f"{_ICONS[kind]} *[{queue_name}] {lead}*: {change.reading.summary}"
    return Notification(change.condition, kind, subject, text)


def channels(settings: Settings) -> list[str]:
    configured = [("webhook", settings.alert_webhook_url), ("sns", settings.alert_sns_topic_arn)]
    return [name for name, value in configured if value]


async def send_all(settings: Settings, notifications: list[Notification]) -> list[Delivery]:
    """Every notification on every configured channel, at once."""
    sends = []
    for item in notifications:
        if settings.alert_webhook_url:
            sends.append(post_webhook(settings.alert_webhook_url, item))
        if settings.alert_sns_topic_arn:
            sends.append(publish_sns(settings.alert_sns_topic_arn, item))
    deliveries = list(await asyncio.gather(*sends))
    for delivery in deliveries:
        level = logging.INFO if delivery.ok else logging.ERROR
        logger.log(
            level,
            "alert %s %s via %s: %s (%s)",
            delivery.condition,
            delivery.kind,
            delivery.channel,
            "sent" if delivery.ok else "failed",
            delivery.detail,
        )
    return deliveries


async def post_webhook(url: str, item: Notification) -> Delivery:
    """POST `{"text": ...}`; a 2xx is delivered. No redirects followed."""
    try:
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as client:
            response = await client.post(url, json={"text": item.text})
    except httpx.HTTPError as error:
        return Delivery("webhook", item.condition, item.kind, False, repr(error))
    ok = 200 <= response.status_code < 300
    return Delivery("webhook", item.condition, item.kind, ok, f"HTTP {response.status_code}")


async def publish_sns(topic_arn: str, item: Notification) -> Delivery:
    try:
        errors = importlib.import_module("botocore.exceptions")
    except ImportError:
        detail = "boto3 is not installed (the Lambda runtime ships it; elsewhere install it)"
        return Delivery("sns", item.condition, item.kind, False, detail)
    try:
        message_id = await asyncio.to_thread(_publish, topic_arn, item)
    except (errors.BotoCoreError, errors.ClientError) as error:
        return Delivery("sns", item.condition, item.kind, False, repr(error))
    return Delivery("sns", item.condition, item.kind, True, f"message {message_id}")


def _publish(topic_arn: str, item: Notification) -> str:
    reply = _sns_client(topic_arn).publish(
        TopicArn=topic_arn, Subject=item.subject, Message=item.text
    )
    return str(reply.get("MessageId", ""))


def _sns_client(topic_arn: str) -> Any:
    """A client in the topic's own region (arn:aws:sns:<region>:<account>:<name>)."""
    boto3 = importlib.import_module("boto3")
    config = importlib.import_module("botocore.config").Config(
        connect_timeout=SNS_CONNECT_TIMEOUT_S,
        read_timeout=SNS_READ_TIMEOUT_S,
        retries={"total_max_attempts": SNS_MAX_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client("sns", region_name=topic_arn.split(":")[3], config=config)
