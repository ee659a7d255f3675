"""GET /api/stats: queue counts and worker health, for service keys only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import redis

from shared.queue.stats import WORKER_STALE_AFTER_MS
from shared.store.keys import QueueKeys
from tests.support.api import QueueApi
from tests.support.clock import FrozenClock

JOB = {"type": "image.generate", "data": {}}
KEYS = QueueKeys("ai-queue")


async def test_a_service_sees_the_counts_of_the_queue_in_one_request(
    queue_api: QueueApi,
    service_headers: dict[str, str],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    first = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=service_headers)
    queue_clock.advance(1500)
    await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=service_headers)
    await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "delayMs": 60_000}, headers=service_headers
    )
    cancelled = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=service_headers)
    await queue_api.status.delete(cancelled.headers["location"], headers=service_headers)
    redis_direct.zadd(KEYS.leases, {"01J0000000000000000000000A|token": queue_clock.now + 1000})
    redis_direct.zadd(KEYS.done("completed"), {"c1": queue_clock.now - 10})
    redis_direct.zadd(KEYS.done("failed"), {"f1": queue_clock.now - 2 * 3_600_000})
    queue_clock.advance(500)
    before = gateway_requests()
    response = await queue_api.stats.get("/api/stats", headers=service_headers)
    assert gateway_requests() - before == 1
    assert response.status_code == 200
    body = response.json()
    assert body.pop("usage")["day"] == time.strftime(
        "%Y-%m-%d", time.gmtime(queue_clock.now / 1000)
    )
    assert body == {
        "pending": 2,
        "delayed": 1,
        "processing": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
        "completedLastHour": 1,
        "failedLastHour": 0,
        "oldestPendingAgeMs": queue_clock.now - first.json()["createdAt"],
        "workers": [],
        "concurrency": {"types": [], "users": [], "userLimit": None},
    }


async def test_stats_list_workers_seen_lately_and_drop_the_stale(
    queue_api: QueueApi,
    service_headers: dict[str, str],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
) -> None:
    now = queue_clock.now
    redis_direct.hset(
        KEYS.workers,
        mapping={
            "gpu-1": json.dumps({"lastSeenMs": now - 2000, "active": 1, "concurrency": 2}),
            "gpu-0": json.dumps({"lastSeenMs": now - WORKER_STALE_AFTER_MS - 1, "active": 0}),
        },
    )
    response = await queue_api.stats.get("/api/stats", headers=service_headers)
    assert response.json()["workers"] == [
        # active counts the leases a worker holds now, not its heartbeat's: it holds none
        {"id": "gpu-1", "lastSeenMs": now - 2000, "active": 0, "concurrency": 2}
    ]
    assert redis_direct.hkeys(KEYS.workers) == ["gpu-1"]


async def test_a_user_token_may_not_read_stats_and_redis_is_not_called(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    response = await queue_api.stats.get("/api/stats", headers=user_headers())
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "forbidden"
    assert gateway_requests() == before
