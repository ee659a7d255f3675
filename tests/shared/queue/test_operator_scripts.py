"""The operator's scripts (index_page, retry_jobs, purge_jobs) touch only the keys they declare
(SPEC 6), checked with Redis's MONITOR as tests/shared/store/test_script_keys.py checks the
others; and the listing walks an index in Redis's own order, ties included, on every branch."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest
import redis

from local.stack import Gateway, LocalStack
from shared.queue.listing import JobListQuery, list_jobs
from shared.queue.models import JobStatus
from shared.queue.purge import purge_jobs
from shared.queue.retry import retry_by_status, retry_jobs
from shared.store.scripts import load_script
from tests.support.harness import T0_MS, QueueHarness, make_harness
from tests.support.queue_states import fill_every_state
from tests.support.redis_monitor import SCRIPT_COMMANDS, Monitor, keys_of

T = TypeVar("T")
OPERATOR_SCRIPTS = {"queue/index_page", "queue/retry_jobs", "queue/purge_jobs"}


@pytest.fixture
def monitor(local_stack: LocalStack, redis_direct: redis.Redis) -> Iterator[Monitor]:
    watching = Monitor(local_stack.redis.url, redis_direct)
    yield watching
    watching.close()


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


async def audited(monitor: Monitor, direct: redis.Redis, operation: Awaitable[T]) -> set[str]:
    """Run `operation`; the names of the scripts it ran, each checked against its KEYS."""
    by_sha = {load_script(name).sha1: name for name in OPERATOR_SCRIPTS}
    monitor.commands()
    await operation
    commands = monitor.commands()
    calls = [c for c in commands if c.client != "lua" and c.name in SCRIPT_COMMANDS]
    ran = [c for c in commands if c.client == "lua"]
    assert len(calls) <= 1
    for call in calls:
        declared = set(keys_of(direct, call.args))
        for command in ran:
            undeclared = set(keys_of(direct, command.args)) - declared
            assert not undeclared, f"{command.args[:3]} touches undeclared {undeclared}"
    return {by_sha.get(call.args[1], call.args[1]) for call in calls}


async def test_the_operator_scripts_touch_only_the_keys_they_declare(
    monitor: Monitor, queue: QueueHarness, redis_direct: redis.Redis
) -> None:
    r, s = queue.redis, queue.settings
    states = await fill_every_state(queue, T0_MS, per_state=3)
    seen: set[str] = set()
    query = JobListQuery(status=JobStatus.FAILED, limit=2)
    page = await list_jobs(r, s, query)
    seen |= await audited(monitor, redis_direct, list_jobs(r, s, query))
    after = JobListQuery(status=JobStatus.FAILED, limit=2, cursor=page.next_cursor or "")
    seen |= await audited(monitor, redis_direct, list_jobs(r, s, after))
    named = [states.of(JobStatus.FAILED)[0], states.of(JobStatus.PENDING)[0]]
    seen |= await audited(monitor, redis_direct, retry_jobs(r, s, named, T0_MS + 10))
    seen |= await audited(monitor, redis_direct, retry_by_status(r, s, "cancelled", T0_MS, 2))
    cutoff = T0_MS + 60_000
    seen |= await audited(monitor, redis_direct, purge_jobs(r, s, "completed", cutoff, 2))

    assert seen == OPERATOR_SCRIPTS


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
async def test_pages_follow_redis_order_through_ties_of_every_length(
    queue: QueueHarness, redis_direct: redis.Redis, limit: int
) -> None:
    index = queue.keys.done("failed")
    members = [f"01ARZ3NDEKTSV4RRFFQ69G5F{i:02d}" for i in range(12)]
    scores = [1, 1, 1, 1, 1, 2, 3, 3, 3, 4, 5, 5]  # runs of 5, 1, 3, 1 and 2 equal scores
    redis_direct.zadd(index, dict(zip(members, scores, strict=True)))
    for member in members:  # the jobs exist, failed, so the page shows them
        redis_direct.hset(queue.keys.job(member), mapping=failed_job(member))
    expected = redis_direct.zrevrange(index, 0, -1)

    seen: list[str] = []
    cursor = ""
    while True:
        page = await list_jobs(
            queue.redis,
            queue.settings,
            JobListQuery(status=JobStatus.FAILED, limit=limit, cursor=cursor),
        )
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == expected


def failed_job(job_id: str) -> dict[str, str]:
    return {
        "id": job_id,
        "type": "t",
        "status": "failed",
        "priority": "5",
        "attempts": "1",
        "maxAttempts": "1",
        "createdAt": "1",
        "finishedAt": "2",
    }
