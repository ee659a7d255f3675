"""Each alert condition of SPEC section 11, end to end against real Redis: it fires (a Slack-
style message to a local receiver and an SNS message, faked by moto), stays quiet through the
cool-down, and is announced once more when it recovers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import redis

from local.stack import Gateway
from shared import clock
from shared.alerts.checks import AlertReport, run_alert_checks
from shared.alerts.conditions import Condition
from shared.alerts.state import alerts_key
from shared.usage.meter import DAY_MS, usage_key, usage_meter, utc_day
from tests.support.alert_inboxes import SnsInbox, sns_inbox, webhook_texts
from tests.support.harness import QueueHarness, make_harness
from tests.support.webhook_receiver import WebhookReceiver

COOLDOWN_S = 600
T = clock.now_ms  # each test reads the real clock once, in its own body
MINUTE_MS = 60_000


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    usage_meter.clear()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


@pytest.fixture
def inbox() -> Iterator[SnsInbox]:
    with sns_inbox() as opened:
        yield opened


@dataclass
class Alerts:
    queue: QueueHarness
    receiver: WebhookReceiver
    inbox: SnsInbox

    async def check(self, at_ms: int, *, storage: bool = False) -> AlertReport:
        q = self.queue
        return await run_alert_checks(q.redis, q.settings, at_ms, read_storage=storage)

    def said(self) -> list[tuple[str, str]]:
        """(webhook text, SNS subject) of each notification so far, both channels in step."""
        texts, published = webhook_texts(self.receiver), self.inbox.messages()
        assert [m["Message"] for m in published] == texts, "SNS carries the same text"
        return [(text, message["Subject"]) for text, message in zip(texts, published, strict=True)]


@pytest.fixture
def alerts(
    gateway: Gateway, redis_direct: redis.Redis, receiver: WebhookReceiver, inbox: SnsInbox
) -> Callable[..., Alerts]:
    def make(**thresholds: str) -> Alerts:
        queue = make_harness(
            gateway,
            redis_direct,
            ALERT_WEBHOOK_URL=receiver.url("/services/T000/B000/xyz"),
            ALERT_SNS_TOPIC_ARN=inbox.topic_arn,
            ALERT_COOLDOWN_S=str(COOLDOWN_S),
            **thresholds,
        )
        return Alerts(queue, receiver, inbox)

    return make


async def fires_is_cooled_down_and_recovers(
    alerts: Alerts,
    condition: Condition,
    title: str,
    now_ms: int,
    calm_down: Callable[[], Awaitable[object]],
    *,
    recovered_at_ms: int | None = None,
    storage: bool = False,
) -> None:
    fired = await alerts.check(now_ms, storage=storage)
    assert condition in fired.firing
    [(text, subject)] = alerts.said()
    assert text.startswith(f":rotating_light: *[ai-queue] ALERT: {title}*: ")
    assert subject == f"[ai-queue] ALERT: {title}"

    quiet = await alerts.check(now_ms + 5 * MINUTE_MS, storage=storage)
    assert condition in quiet.firing
    assert quiet.deliveries == []
    assert len(alerts.said()) == 1, "nothing more within the cool-down"

    await calm_down()
    recovered_at_ms = recovered_at_ms or now_ms + 10 * MINUTE_MS
    recovered = await alerts.check(recovered_at_ms, storage=storage)
    assert condition in recovered.checked
    assert condition not in recovered.firing
    [_, (text, subject)] = alerts.said()
    assert text.startswith(f":white_check_mark: *[ai-queue] RECOVERED: {title}*: ")
    assert subject == f"[ai-queue] RECOVERED: {title}"
    assert {(d.channel, d.ok) for d in recovered.deliveries} == {("webhook", True), ("sns", True)}

    later = await alerts.check(recovered_at_ms + 5 * MINUTE_MS, storage=storage)
    assert later.deliveries == [], "a recovery is announced once"


async def test_too_many_pending_jobs(alerts: Callable[..., Alerts]) -> None:
    run = alerts(ALERT_MAX_PENDING="2")
    now = T()
    for _ in range(3):
        await run.queue.enqueue(now_ms=now)

    async def drain() -> None:
        await run.queue.claim(count=3, now_ms=now)

    await fires_is_cooled_down_and_recovers(run, Condition.PENDING, "queue backing up", now, drain)
    assert "3 jobs pending (ALERT_MAX_PENDING=2)" in webhook_texts(run.receiver)[0]


async def test_a_job_waiting_too_long(alerts: Callable[..., Alerts]) -> None:
    run = alerts(ALERT_MAX_OLDEST_PENDING_S="60")
    now = T()
    await run.queue.enqueue(now_ms=now - 2 * MINUTE_MS, priority=9)
    await run.queue.enqueue(now_ms=now, priority=0)  # a newer job in an earlier band

    async def drain() -> None:
        await run.queue.claim(count=2, now_ms=now)

    await fires_is_cooled_down_and_recovers(
        run, Condition.OLDEST_PENDING, "jobs waiting too long", now, drain
    )
    assert "the oldest pending job has waited 2 min" in webhook_texts(run.receiver)[0]


async def test_a_high_failure_rate_over_the_last_hour(alerts: Callable[..., Alerts]) -> None:
    run = alerts(ALERT_MAX_FAILURE_RATE="0.25")
    now, keys, direct = T(), run.queue.keys, run.queue.direct
    direct.zadd(keys.done("failed"), {f"f{i}": now - MINUTE_MS for i in range(4)})
    direct.zadd(keys.done("completed"), {f"c{i}": now - MINUTE_MS for i in range(6)})
    direct.zadd(keys.done("failed"), {f"old{i}": now - 2 * 3_600_000 for i in range(50)})

    async def succeed() -> None:
        direct.zadd(keys.done("completed"), {f"d{i}": now for i in range(30)})

    await fires_is_cooled_down_and_recovers(
        run, Condition.FAILURE_RATE, "jobs failing", now, succeed
    )
    assert (
        "40% of the jobs finished in the last hour failed (4 of 10"
        in webhook_texts(run.receiver)[0]
    )


async def test_too_few_live_workers(alerts: Callable[..., Alerts]) -> None:
    run = alerts(ALERT_MIN_WORKERS="1")
    now, keys, direct = T(), run.queue.keys, run.queue.direct
    direct.hset(keys.workers, "gone", json.dumps({"lastSeenMs": now - 3_600_000, "active": 0}))

    async def start_worker() -> None:
        beat = {"lastSeenMs": now + 10 * MINUTE_MS, "active": 0, "concurrency": 1}
        direct.hset(keys.workers, "w1", json.dumps(beat))

    await fires_is_cooled_down_and_recovers(
        run, Condition.WORKERS, "too few workers", now, start_worker
    )
    assert "0 live workers (ALERT_MIN_WORKERS=1)" in webhook_texts(run.receiver)[0]


async def test_the_day_s_commands_near_the_budget(alerts: Callable[..., Alerts]) -> None:
    run = alerts(ALERT_DAILY_COMMAND_BUDGET="1000")
    now = T()
    run.queue.direct.set(usage_key("ai-queue", utc_day(now)), 850)

    async def nothing() -> None:
        pass

    tomorrow = (now // DAY_MS + 1) * DAY_MS + MINUTE_MS
    await fires_is_cooled_down_and_recovers(
        run,
        Condition.DAILY_COMMANDS,
        "Upstash commands near the daily budget",
        now,
        nothing,
        recovered_at_ms=tomorrow,
    )
    assert "of today's Upstash command budget used (85" in webhook_texts(run.receiver)[0]


@pytest.fixture
def memory_limit(redis_direct: redis.Redis) -> Iterator[Callable[[float], None]]:
    """`limit(ratio)`: maxmemory set so that what Redis holds now is `ratio` of it."""

    def limit(ratio: float) -> None:
        used = int(redis_direct.info("memory")["used_memory"])
        redis_direct.config_set("maxmemory", int(used / ratio))

    yield limit
    redis_direct.config_set("maxmemory", 0)


async def test_storage_nearly_full_where_the_server_reports_a_limit(
    alerts: Callable[..., Alerts], memory_limit: Callable[[float], None]
) -> None:
    run = alerts()
    now = T()
    memory_limit(0.9)

    async def more_room() -> None:
        memory_limit(0.1)

    await fires_is_cooled_down_and_recovers(
        run, Condition.STORAGE, "Upstash storage nearly full", now, more_room, storage=True
    )


async def test_without_a_limit_reported_storage_is_not_judged(
    alerts: Callable[..., Alerts],
) -> None:
    report = await alerts().check(T(), storage=True)

    assert report.checked == []


async def test_a_condition_still_firing_after_the_cool_down_is_announced_again(
    alerts: Callable[..., Alerts],
) -> None:
    run = alerts(ALERT_MIN_WORKERS="1")
    now = T()
    await run.check(now)
    await run.check(now + COOLDOWN_S * 1000)

    [_, (text, subject)] = run.said()
    assert text.startswith(":rotating_light: *[ai-queue] STILL: too few workers*")
    assert subject == "[ai-queue] STILL: too few workers"


async def test_overlapping_checks_notify_once(alerts: Callable[..., Alerts]) -> None:
    import asyncio

    run = alerts(ALERT_MIN_WORKERS="1")
    now = T()

    reports = await asyncio.gather(*(run.check(now) for _ in range(4)))

    assert sum(len(r.deliveries) for r in reports) == 2, "one message, on each channel"
    assert len(run.said()) == 1


async def test_the_state_expires_two_cool_downs_after_its_last_change(
    alerts: Callable[..., Alerts], redis_direct: redis.Redis
) -> None:
    run = alerts(ALERT_MIN_WORKERS="1")
    await run.check(T())

    ttl_ms = redis_direct.pttl(alerts_key("ai-queue"))
    assert 2 * COOLDOWN_S * 1000 - 60_000 < ttl_ms <= 2 * COOLDOWN_S * 1000


async def test_nothing_is_read_without_a_channel(
    gateway: Gateway, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> None:
    queue = make_harness(gateway, redis_direct, ALERT_MAX_PENDING="1")
    before = gateway_requests()

    report = await run_alert_checks(queue.redis, queue.settings, T(), read_storage=True)

    assert report.skipped == "no ALERT_WEBHOOK_URL or ALERT_SNS_TOPIC_ARN"
    assert gateway_requests() == before


async def test_a_failing_webhook_is_logged_and_sns_still_delivers(
    alerts: Callable[..., Alerts], caplog: pytest.LogCaptureFixture
) -> None:
    run = alerts(ALERT_MIN_WORKERS="1")
    run.receiver.behaviour.fail_first = 1

    report = await run.check(T())

    assert {(d.channel, d.ok) for d in report.deliveries} == {("webhook", False), ("sns", True)}
    assert "alert workers firing via webhook: failed (HTTP 500)" in caplog.text
    assert len(run.inbox.messages()) == 1
