"""Rate limits inside POST /api/enqueue (one atomic script with the job): over a limit, 429 with
a Retry-After that is never early, no job, and not one unit consumed in any policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from shared.config.settings import get_settings
from shared.ratelimit.blocked import blocked
from shared.ratelimit.state import decode
from shared.store.keys import QueueKeys
from tests.support.api import QueueApi
from tests.support.clock import FrozenClock
from tests.support.ratelimit_cases import START

JOB = {"type": "image.generate", "data": {"prompt": "a cat in a hat"}}
KEYS = QueueKeys("ai-queue")
NOW = START + 15_000
CALLER_IP = "203.0.113.7"


@pytest.fixture
def limits(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RATELIMIT_POLICIES", "user:5/1m,user:7/1d,ip:100/1h")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def at_now(queue_clock: FrozenClock) -> FrozenClock:
    queue_clock.now = NOW
    return queue_clock


def rate_limit_state(client: redis.Redis) -> dict[str, str | None]:
    return {
        key: client.get(key)
        for key in (KEYS.rate_limit("user", "u-1"), KEYS.rate_limit("ip", CALLER_IP))
    }


def jobs(client: redis.Redis) -> int:
    return len(list(client.scan_iter(match=KEYS.job("*"))))


async def test_over_a_limit_429_retry_after_not_before_the_reset_no_job_nothing_consumed(
    limits: None,
    queue_api: QueueApi,
    at_now: FrozenClock,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    auth = user_headers("u-1")
    for _ in range(5):
        assert (await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)).is_success
    state = rate_limit_state(redis_direct)

    denied = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)

    assert denied.status_code == 429
    retry_after_s = int(denied.headers["retry-after"])
    assert NOW // 1000 + retry_after_s >= int(denied.headers["x-ratelimit-reset"])
    assert denied.headers["ratelimit-policy"] == (
        '"user-1m";q=5;w=60, "user-1d";q=7;w=86400, "ip";q=100;w=3600'
    )
    assert (jobs(redis_direct), redis_direct.zcard(KEYS.ready)) == (5, 5)
    assert rate_limit_state(redis_direct) == state

    at_now.now = NOW + retry_after_s * 1000 - 1000
    assert (await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)).status_code == 429
    at_now.now = NOW + retry_after_s * 1000
    assert (await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)).status_code == 202


async def test_a_denial_by_the_daily_limit_leaves_the_minute_and_ip_counts_unchanged(
    limits: None,
    queue_api: QueueApi,
    at_now: FrozenClock,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    auth = user_headers("u-1")
    statuses = []
    for minute in range(4):
        at_now.now = NOW + minute * 120_000  # the minute window has slid away each time
        for _ in range(2):
            response = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)
            statuses.append(response.status_code)
    assert statuses == [202] * 7 + [429]
    assert jobs(redis_direct) == 7
    ip_state = decode(redis_direct.get(KEYS.rate_limit("ip", CALLER_IP)))
    user_state = decode(redis_direct.get(KEYS.rate_limit("user", "u-1")))
    assert ip_state["s3600000"][1] == 7
    assert user_state["s86400000"][1] == 7
    assert user_state["s60000"][1:] == (1, 0)  # the denied enqueue was not counted this minute


async def test_the_rate_limit_share_of_an_enqueue_is_one_mget_and_one_set_per_identifier(
    limits: None,
    queue_api: QueueApi,
    at_now: FrozenClock,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    auth = user_headers("u-1")

    async def commands_of_one_enqueue() -> dict[str, int]:
        redis_direct.config_resetstat()
        await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)
        stats = redis_direct.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()
                if name.startswith(("cmdstat_mget", "cmdstat_set", "cmdstat_evalsha"))}  # fmt: skip

    admitted = await commands_of_one_enqueue()
    for _ in range(4):
        await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)
    blocked.clear()  # let the denial reach Redis instead of this instance's cache
    denied = await commands_of_one_enqueue()
    assert admitted == {"evalsha": 1, "mget": 1, "set": 2}  # user key + ip key, each SET ... PX
    assert denied == {"evalsha": 1, "mget": 1}
