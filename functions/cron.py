"""GET|POST /api/cron: the tick that runs every minute (SPEC section 11).

- Vercel: a cron in `vercel.json` calls `GET /api/cron` every minute with
  `Authorization: Bearer $CRON_SECRET` (Vercel sends it when CRON_SECRET is set).
- Lambda: an EventBridge schedule (`serverless.yml`) invokes `handler` with a Scheduled Event,
  not an HTTP request: the tick runs directly, no auth (only EventBridge can invoke it so).
- A service key may call it too, to try a deployment by hand.

The tick fires the recurring jobs that are due (`shared.schedules`, SPEC section 12), and on
every fifth minute runs the alert checks (`shared.alerts.checks`; storage on the hour).
Every step is safe to repeat: overlapping or retried ticks fire a slot once and notify once.

Billed, with every alert configured (a webhook or SNS set) and no schedules: nothing on four
minutes of five; 7 on every fifth (8 with a job pending, +1 INFO on the hour, +3 to 5 when an
alert changes): about 2,050 a day, 1.4 a minute on average, plus the recurring jobs' own cost
and the usage meter's 1%. Without a notification channel the alerts read nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from upstash_redis.asyncio import Redis

from shared import clock
from shared.alerts.checks import (
    ALERT_CHECK_EVERY_MIN,
    STORAGE_CHECK_EVERY_MIN,
    AlertReport,
    check_due,
    run_alert_checks,
)
from shared.config.settings import Settings, get_settings
from shared.errors import AppError, Unauthorized
from shared.schedules.firing import fire_due_schedules
from shared.store.client import get_redis
from shared.web.auth import authenticate
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response

T = TypeVar("T")
logger = logging.getLogger("functions.cron")


async def fire_recurring_jobs(redis: Redis, settings: Settings, now_ms: int) -> list[Any]:
    """SPEC section 12: the due slot of each of SCHEDULES, once (no request without them)."""
    fired = await fire_due_schedules(redis, settings, now_ms)
    return [
        {"name": slot.name, "slotMs": slot.slot_ms, "jobId": slot.job_id, "created": slot.created}
        for slot in fired
    ]


async def run_tick(settings: Settings, now_ms: int) -> dict[str, Any]:
    """Both steps run even when the other fails (a bad SCHEDULES must not silence the alerts);
    the first failure is raised after both."""
    redis = get_redis(settings)
    failures: list[AppError] = []
    recurring = await _step(fire_recurring_jobs(redis, settings, now_ms), failures)
    alerts: AlertReport | None = AlertReport(skipped=f"every {ALERT_CHECK_EVERY_MIN} minutes")
    if check_due(now_ms, ALERT_CHECK_EVERY_MIN):
        storage = check_due(now_ms, STORAGE_CHECK_EVERY_MIN)
        alerts = await _step(
            run_alert_checks(redis, settings, now_ms, read_storage=storage), failures
        )
    if failures:
        raise failures[0]
    body = None if alerts is None else alerts.body()
    return {"atMs": now_ms, "schedules": recurring, "alerts": body}


async def _step(work: Awaitable[T], failures: list[AppError]) -> T | None:
    try:
        return await work
    except AppError as error:
        logger.error("cron tick step failed: %s (%s)", error.detail, error.code)
        failures.append(error)
        return None


async def tick(request: Request) -> Response:
    settings = get_settings()
    await authorize(settings, request)
    return json_response(200, await run_tick(settings, clock.now_ms()))


async def authorize(settings: Settings, request: Request) -> None:
    """Vercel's cron (Bearer CRON_SECRET, compared in constant time) or a service key."""
    if settings.cron_secret is not None:
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), settings.cron_secret.encode()
        ):
            return
        if not settings.auth_configured:
            raise Unauthorized("send 'Authorization: Bearer <CRON_SECRET>'")
    principal = await authenticate(settings, request)
    principal.require_service()


app = endpoint({"GET": tick, "POST": tick})
_http_handler = lambda_handler(app)
_scheduled_loop: asyncio.AbstractEventLoop | None = None


def is_scheduled_event(event: object) -> bool:
    """An EventBridge (CloudWatch Events) schedule's event, as a `schedule` event sends it."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda: a schedule's event runs the tick; anything else is an HTTP request."""
    if not is_scheduled_event(event):
        return _http_handler(event, context)
    global _scheduled_loop  # noqa: PLW0603 - one loop per warm instance, as Mangum keeps
    if _scheduled_loop is None or _scheduled_loop.is_closed():
        _scheduled_loop = asyncio.new_event_loop()
    return _scheduled_loop.run_until_complete(run_tick(get_settings(), clock.now_ms()))
