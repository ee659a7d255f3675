"""GET|POST /api/cron, the every-minute tick: Vercel's cron authenticates with CRON_SECRET, an
EventBridge schedule invokes the Lambda handler directly; the alert checks run on every fifth
minute and cost nothing on the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from functions import cron
from local.stack import Gateway
from shared.config.settings import get_settings
from shared.usage import meter
from shared.usage.meter import usage_meter
from shared.web.types import ASGIApp
from tests.support.alert_inboxes import webhook_texts
from tests.support.clock import FrozenClock
from tests.support.platform_events import Call, lambda_context, make_event, read_response
from tests.support.scripts import preload_scripts
from tests.support.webhook_receiver import WebhookReceiver

CRON_SECRET = "cron-secret-0123456789abcdef"
FIFTH_MINUTE_MS = 300_000
HOUR_MS = 3_600_000
# What EventBridge sends a Lambda on a `schedule` event (AWS's documented shape).
SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-01T12:05:00Z",
    "region": "eu-west-1",
    "resources": [
        "arn:aws:events:eu-west-1:123456789012:rule/ai-queue-prod-CronEventsRuleSchedule1"
    ],
    "detail": {},
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


@pytest.fixture
def cron_env(
    api_env: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    receiver: WebhookReceiver,
    redis_direct: redis.Redis,
) -> Iterator[Gateway]:
    monkeypatch.setenv("CRON_SECRET", CRON_SECRET)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url())
    monkeypatch.setenv("ALERT_MIN_WORKERS", "1")
    get_settings.cache_clear()
    preload_scripts(redis_direct)
    usage_meter.clear()
    yield api_env
    get_settings.cache_clear()
    usage_meter.clear()


@pytest.fixture
def on_a_fifth_minute(queue_clock: FrozenClock) -> FrozenClock:
    """Ten past this hour: a fifth minute, as is the next one a test may advance to, and neither
    is on the hour (when the tick also stores the alerts' state), whenever the test runs."""
    queue_clock.now = queue_clock.now // HOUR_MS * HOUR_MS + 2 * FIFTH_MINUTE_MS + 1_234
    return queue_clock


@pytest.fixture
def client(
    cron_env: Gateway, call_function: Callable[[ASGIApp], httpx.AsyncClient]
) -> httpx.AsyncClient:
    return call_function(cron.app)


def secret(value: str = CRON_SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_vercel_s_cron_call_runs_the_alert_checks_on_a_fifth_minute(
    client: httpx.AsyncClient, receiver: WebhookReceiver, on_a_fifth_minute: FrozenClock
) -> None:
    answer = await client.get("/api/cron", headers=secret())

    assert answer.status_code == 200
    body = answer.json()
    assert body["atMs"] == on_a_fifth_minute.now
    assert body["alerts"]["firing"] == ["workers"]
    assert body["alerts"]["notified"] == [
        {"condition": "workers", "kind": "firing", "channel": "webhook", "ok": True}
    ]
    assert body["schedules"] == []
    [text] = webhook_texts(receiver)
    assert "ALERT: too few workers" in text


async def test_other_minutes_check_nothing_and_cost_no_request(
    client: httpx.AsyncClient,
    on_a_fifth_minute: FrozenClock,
    gateway_requests: Callable[[], int],
) -> None:
    on_a_fifth_minute.advance(60_000)
    before = gateway_requests()

    answer = await client.get("/api/cron", headers=secret())

    assert answer.json()["alerts"]["skipped"] == "every 5 minutes"
    assert gateway_requests() == before


async def test_a_check_with_every_alert_configured_costs_one_request_and_eight_commands(
    client: httpx.AsyncClient,
    on_a_fifth_minute: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    monkeypatch.setattr(meter, "FLUSH_EVERY_COMMANDS", 10**9)  # no flush rides along here
    for name, value in {
        "ALERT_MAX_PENDING": "100",
        "ALERT_MAX_OLDEST_PENDING_S": "600",
        "ALERT_MAX_FAILURE_RATE": "0.5",
        "ALERT_DAILY_COMMAND_BUDGET": "10000",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    await client.get("/api/cron", headers=secret())  # the workers alert fires: state written
    on_a_fifth_minute.advance(FIFTH_MINUTE_MS)
    requests, billed = gateway_requests(), billed_commands()

    answer = await client.get("/api/cron", headers=secret())

    assert answer.json()["alerts"]["notified"] == []
    assert gateway_requests() - requests == 1
    # EVALSHA, ZCARD ready, 2 ZCOUNT, HGETALL workers, GET usage, HGETALL alerts (no job pending)
    assert billed_commands() - billed == 7


async def test_the_tick_fires_a_due_recurring_job_once(
    client: httpx.AsyncClient,
    on_a_fifth_minute: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    redis_direct: redis.Redis,
) -> None:
    schedule = {"name": "every-minute", "cron": "* * * * *", "job": {"type": "report", "data": {}}}
    monkeypatch.setenv("SCHEDULES", json.dumps([schedule]))
    get_settings.cache_clear()

    first = (await client.get("/api/cron", headers=secret())).json()["schedules"]
    again = (await client.get("/api/cron", headers=secret())).json()["schedules"]

    slot_ms = on_a_fifth_minute.now // 60_000 * 60_000
    [fired] = first
    assert (fired["name"], fired["slotMs"], fired["created"]) == ("every-minute", slot_ms, True)
    assert again == [], "the slot fired already"
    assert redis_direct.zcard("aq:{ai-queue}:ready") == 1


async def test_a_bad_schedules_setting_still_lets_the_alerts_run(
    client: httpx.AsyncClient,
    receiver: WebhookReceiver,
    on_a_fifth_minute: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCHEDULES", '[{"name": "x", "cron": "not a cron", "job": {}}]')
    get_settings.cache_clear()

    answer = await client.get("/api/cron", headers=secret())

    assert answer.status_code == 500
    assert "SCHEDULES" in answer.json()["detail"]
    assert len(webhook_texts(receiver)) == 1, "the alert was sent all the same"


async def test_a_wrong_secret_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/cron", headers=secret("not-the-secret-at-all"))

    assert answer.status_code == 401


async def test_a_user_token_is_forbidden_and_a_service_key_may_run_it(
    client: httpx.AsyncClient,
    user_headers: Callable[[str], dict[str, str]],
    service_headers: dict[str, str],
    on_a_fifth_minute: FrozenClock,
) -> None:
    assert (await client.get("/api/cron", headers=user_headers("user-1"))).status_code == 403
    assert (await client.post("/api/cron", headers=service_headers)).status_code == 200


async def test_without_cron_secret_or_auth_every_call_is_a_misconfiguration(
    upstash_env: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
) -> None:
    for name in ("AUTH_JWT_SECRET", "AUTH_API_KEYS", "CRON_SECRET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()

    answer = await call_function(cron.app).get("/api/cron", headers=secret())

    assert answer.status_code == 500
    assert answer.json()["code"] == "server_misconfigured"


@pytest.fixture
def lambda_loop() -> Iterator[None]:
    """As on Lambda: no loop running while `handler` is called (it drives its own)."""
    yield
    if cron._scheduled_loop is not None:
        cron._scheduled_loop.close()
        cron._scheduled_loop = None


def test_an_eventbridge_schedule_runs_the_tick_without_http(
    cron_env: Gateway,
    receiver: WebhookReceiver,
    on_a_fifth_minute: FrozenClock,
    lambda_loop: None,
) -> None:
    report: dict[str, Any] = cron.handler(json.loads(json.dumps(SCHEDULED_EVENT)), lambda_context())

    assert report["alerts"]["firing"] == ["workers"]
    assert len(webhook_texts(receiver)) == 1
    again = cron.handler(SCHEDULED_EVENT, lambda_context())  # a warm instance, the next tick
    assert again["alerts"]["notified"] == [], "cooling down"


def test_an_http_event_on_lambda_is_an_http_call(
    cron_env: Gateway, on_a_fifth_minute: FrozenClock, lambda_loop: None
) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        call = Call("GET", "/api/cron", headers=list(secret().items()))
        raw = cron.handler(make_event("http-api", call), lambda_context())
    finally:
        asyncio.set_event_loop(None)
        loop.close()

    response = read_response("http-api", raw)
    assert response.status == 200
    assert json.loads(response.body)["alerts"]["firing"] == ["workers"]
