"""GET /api/jobs, POST /api/jobs/retry and POST /api/jobs/purge through real ASGI, real
credentials and real Redis: listing by status newest first with cursors, retrying failed or
cancelled jobs as new, purging old finished ones; service keys only, every input checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from functions import jobs
from local.stack import Gateway
from shared.queue.models import JobStatus
from shared.store.keys import QueueKeys
from shared.web.types import ASGIApp
from tests.support.clock import FrozenClock
from tests.support.harness import QueueHarness, make_harness
from tests.support.queue_states import QueueStates, fill_every_state

KEYS = QueueKeys("ai-queue")
HOUR_MS = 3_600_000


@pytest.fixture
def billed(redis_direct: redis.Redis) -> Callable[[], int]:
    """Billed commands so far, as `billed_commands` counts them, less the usage meter's own
    INCRBY and EXPIRE (a flush rides on whichever request comes next)."""

    def read() -> int:
        stats = redis_direct.info("commandstats")
        meter = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"}
        meter |= {"cmdstat_incrby", "cmdstat_expire"}
        return sum(int(entry["calls"]) for name, entry in stats.items() if name not in meter)

    return read


@pytest.fixture
def api(
    call_function: Callable[[ASGIApp], httpx.AsyncClient], queue_scripts: None
) -> httpx.AsyncClient:
    return call_function(jobs.app)


@pytest.fixture
async def harness(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


@pytest.fixture
async def states(harness: QueueHarness, queue_clock: FrozenClock) -> QueueStates:
    return await fill_every_state(harness, queue_clock.now - HOUR_MS, per_state=3, users=("a", "b"))


async def listing(api: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    response = await api.get("/api/jobs", params=query, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids_of(page: dict[str, Any]) -> list[str]:
    return [job["id"] for job in page["jobs"]]


# Listing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DELAYED]
)
async def test_jobs_of_a_status_are_listed_newest_first(
    api: httpx.AsyncClient, service_headers: dict[str, str], states: QueueStates, status: JobStatus
) -> None:
    page = await listing(api, service_headers, status=status.value)

    assert ids_of(page) == list(reversed(states.of(status)))
    assert {job["status"] for job in page["jobs"]} == {status.value}
    assert page["nextCursor"] is None


async def test_pending_jobs_are_listed_by_priority_band_then_latest_first(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    states: QueueStates,
    redis_direct: redis.Redis,
) -> None:
    page = await listing(api, service_headers, status="pending")

    ready = redis_direct.zrevrange(KEYS.ready, 0, -1)
    assert ids_of(page) == ready
    assert sorted(ids_of(page)) == sorted(states.of(JobStatus.PENDING))
    priorities = [job["priority"] for job in page["jobs"]]
    assert priorities == sorted(priorities, reverse=True)


async def test_running_jobs_are_listed_from_their_leases(
    api: httpx.AsyncClient, service_headers: dict[str, str], states: QueueStates
) -> None:
    page = await listing(api, service_headers, status="processing")

    assert sorted(ids_of(page)) == sorted(states.of(JobStatus.PROCESSING))
    assert all(job["startedAt"] for job in page["jobs"])


async def test_a_page_costs_two_upstash_requests(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    states: QueueStates,
    gateway_requests: Callable[[], int],
    billed: Callable[[], int],
) -> None:
    before, billed_before = gateway_requests(), billed()
    page = await listing(api, service_headers, status="failed", limit=3)

    assert len(page["jobs"]) == 3
    assert gateway_requests() - before == 2
    assert billed() - billed_before == 2 + 3  # EVALSHA + ZREVRANGEBYSCORE, 3 HGETALL


async def test_what_retry_and_purge_bill(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    states: QueueStates,
    gateway_requests: Callable[[], int],
    billed: Callable[[], int],
) -> None:
    named = [states.of(JobStatus.FAILED)[0], states.of(JobStatus.CANCELLED)[0]]
    costs = []
    for path, body in [
        ("/api/jobs/retry", {"ids": named}),
        ("/api/jobs/retry", {"status": "failed"}),
        ("/api/jobs/purge", {"status": "completed", "olderThanS": 0}),
    ]:
        before, billed_before = gateway_requests(), billed()
        response = await api.post(path, json=body, headers=service_headers)
        assert response.status_code == 200
        costs.append((gateway_requests() - before, billed() - billed_before))

    assert costs == [
        (1, 1 + 5 * 2 + 2 + 3),  # EVALSHA, 5 per job, 2 ZREM done, ZADD ready and lanes, PUBLISH
        (2, 1 + 1 + 5 * 2 + 1 + 3 + 1),  # ZRANGE, EVALSHA, 2 jobs, 1 ZREM, 2 ZADD, PUBLISH, ZCARD
        (2, 1 + 1 + 3 + 1 + 2 + 1),  # ZRANGEBYSCORE, EVALSHA, 3 HMGET, DEL, 2 ZREM, ZCOUNT
    ]


async def test_cursors_walk_every_job_once_even_through_tied_scores(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    harness: QueueHarness,
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
) -> None:
    made = await fill_every_state(harness, queue_clock.now - HOUR_MS, per_state=9)
    failed = made.of(JobStatus.FAILED)
    tied = dict.fromkeys(failed[2:7], queue_clock.now - 1000)  # five failed in one millisecond
    redis_direct.zadd(KEYS.done("failed"), tied)
    expected = redis_direct.zrevrange(KEYS.done("failed"), 0, -1)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await listing(
            api, service_headers, status="failed", limit=2, **({"cursor": cursor} if cursor else {})
        )
        seen += ids_of(page)
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert seen == expected
    assert len(set(seen)) == 9


async def test_a_cursor_still_works_when_its_job_has_left_the_status(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    harness: QueueHarness,
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
) -> None:
    made = await fill_every_state(harness, queue_clock.now - HOUR_MS, per_state=6)
    redis_direct.zadd(KEYS.done("failed"), dict.fromkeys(made.of(JobStatus.FAILED), 5))
    expected = redis_direct.zrevrange(KEYS.done("failed"), 0, -1)

    first = await listing(api, service_headers, status="failed", limit=3)
    retried = await api.post(
        "/api/jobs/retry", json={"ids": [ids_of(first)[-1]]}, headers=service_headers
    )
    assert retried.json()["retried"] == 1
    rest = await listing(api, service_headers, status="failed", cursor=first["nextCursor"])

    assert ids_of(first) + ids_of(rest) == expected


async def test_type_and_user_filter_the_jobs_of_a_page(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    harness: QueueHarness,
    queue_clock: FrozenClock,
) -> None:
    now = queue_clock.now
    mine = await harness.enqueue(now - 3, "alice", type="image.generate")
    await harness.enqueue(now - 2, "bob", type="image.generate")
    await harness.enqueue(now - 1, "alice", type="text.summarize")

    by_user = await listing(api, service_headers, status="pending", userId="alice")
    both = await listing(
        api, service_headers, status="pending", userId="alice", type="image.generate"
    )

    assert {job["userId"] for job in by_user["jobs"]} == {"alice"}
    assert len(by_user["jobs"]) == 2
    assert ids_of(both) == [mine]


async def test_a_filtered_page_may_be_short_while_more_follow(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    harness: QueueHarness,
    queue_clock: FrozenClock,
) -> None:
    now = queue_clock.now
    wanted = await harness.enqueue(now - 10, "alice")
    for i in range(3):
        await harness.enqueue(now - 5 + i, "bob")

    first = await listing(api, service_headers, status="pending", userId="alice", limit=2)
    second = await listing(
        api, service_headers, status="pending", userId="alice", cursor=first["nextCursor"]
    )

    assert first["jobs"] == []
    assert first["nextCursor"] is not None
    assert ids_of(second) == [wanted]
    assert second["nextCursor"] is None


async def test_an_empty_status_lists_nothing(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    assert await listing(api, service_headers, status="failed") == {
        "jobs": [],
        "nextCursor": None,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "status"),
        ({"status": "done"}, "status"),
        ({"status": "failed", "limit": "0"}, "limit"),
        ({"status": "failed", "limit": "201"}, "limit"),
        ({"status": "failed", "limit": "ten"}, "limit"),
        ({"status": "failed", "type": "Not A Type"}, "type"),
        ({"status": "failed", "userId": "x" * 257}, "userId"),
        ({"status": "failed", "cursor": "%%%"}, "cursor"),
        ({"status": "failed", "cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"status": "failed", "user": "typo"}, "user"),
    ],
)
async def test_a_bad_query_is_a_422_naming_the_parameter_without_reaching_redis(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
    query: dict[str, str],
    field: str,
) -> None:
    before = gateway_requests()
    response = await api.get("/api/jobs", params=query, headers=service_headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert gateway_requests() == before


async def test_a_cursor_of_another_status_is_refused(
    api: httpx.AsyncClient, service_headers: dict[str, str], states: QueueStates
) -> None:
    page = await listing(api, service_headers, status="failed", limit=1)
    response = await api.get(
        "/api/jobs",
        params={"status": "completed", "cursor": page["nextCursor"]},
        headers=service_headers,
    )

    assert response.status_code == 422
    assert "failed" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/jobs?status=failed", None),
        ("POST", "/api/jobs/retry", {"status": "failed"}),
        ("POST", "/api/jobs/purge", {"status": "failed", "olderThanS": 0}),
    ],
)
async def test_users_are_forbidden_and_anonymous_callers_unauthorized(
    api: httpx.AsyncClient,
    *,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = gateway_requests()
    as_user = await api.request(method, path, json=body, headers=user_headers("u-1"))
    anonymous = await api.request(method, path, json=body)

    assert as_user.status_code == 403
    assert anonymous.status_code == 401
    assert gateway_requests() == before


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/api/jobs", "GET"),
        ("GET", "/api/jobs/retry", "POST"),
        ("GET", "/prod/api/jobs/purge/", "POST"),
    ],
)
async def test_each_path_answers_its_own_method(
    api: httpx.AsyncClient, service_headers: dict[str, str], method: str, path: str, allowed: str
) -> None:
    response = await api.request(method, path, headers=service_headers)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed


# Retry --------------------------------------------------------------------------------------


async def test_retried_jobs_are_pending_as_new_and_run_again(
    api: httpx.AsyncClient,
    *,
    service_headers: dict[str, str],
    states: QueueStates,
    harness: QueueHarness,
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    failed, cancelled = states.of(JobStatus.FAILED)[0], states.of(JobStatus.CANCELLED)[0]
    completed, pending = states.of(JobStatus.COMPLETED)[0], states.of(JobStatus.PENDING)[0]
    unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

    before = gateway_requests()
    response = await api.post(
        "/api/jobs/retry",
        json={"ids": [failed, cancelled, completed, pending, unknown]},
        headers=service_headers,
    )

    assert gateway_requests() - before == 1
    assert response.status_code == 200
    assert response.json() == {
        "retried": 2,
        "ids": [failed, cancelled],
        "skipped": [
            {"id": completed, "status": "completed"},
            {"id": pending, "status": "pending"},
            {"id": unknown, "status": None},
        ],
        "remaining": 0,
    }
    for job_id in (failed, cancelled):
        stored = harness.job(job_id)
        assert stored["status"] == "pending"
        assert stored["attempts"] == "0"
        assert stored["runAt"] == stored["updatedAt"] == str(queue_clock.now)
        assert not {"error", "result", "finishedAt", "startedAt", "token"} & set(stored)
        assert redis_direct.pttl(KEYS.job(job_id)) == -1
        ready_score = int(stored["priority"]) * 10**13 + queue_clock.now
        assert redis_direct.zscore(KEYS.ready, job_id) == ready_score
    assert failed not in harness.members(KEYS.done("failed"))
    assert cancelled not in harness.members(KEYS.done("cancelled"))

    claimed = await harness.claim(count=10, now_ms=queue_clock.now + 1)
    again = {job.lease.job_id: job.attempt for job in claimed}
    assert again[failed] == again[cancelled] == 1


async def test_retry_by_status_takes_the_oldest_first_and_says_what_remains(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    states: QueueStates,
    harness: QueueHarness,
) -> None:
    failed = states.of(JobStatus.FAILED)

    first = await api.post(
        "/api/jobs/retry", json={"status": "failed", "limit": 2}, headers=service_headers
    )
    second = await api.post("/api/jobs/retry", json={"status": "failed"}, headers=service_headers)

    assert first.json() == {"retried": 2, "ids": failed[:2], "skipped": [], "remaining": 1}
    assert second.json() == {"retried": 1, "ids": failed[2:], "skipped": [], "remaining": 0}
    assert harness.members(KEYS.done("failed")) == []
    assert len(harness.members(KEYS.done("cancelled"))) == 3


async def test_retry_by_status_drops_entries_of_jobs_that_expired(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    states: QueueStates,
    redis_direct: redis.Redis,
) -> None:
    gone = states.of(JobStatus.CANCELLED)[0]
    redis_direct.delete(KEYS.job(gone))

    response = await api.post(
        "/api/jobs/retry", json={"status": "cancelled"}, headers=service_headers
    )

    assert response.json()["retried"] == 2
    assert response.json()["skipped"] == [{"id": gone, "status": None}]
    assert redis_direct.zcard(KEYS.done("cancelled")) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"ids": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"], "status": "failed"}, "body"),
        ({"ids": []}, "ids"),
        ({"ids": ["not-an-id"]}, "ids/0"),
        ({"ids": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"] * 101}, "ids"),
        ({"status": "completed"}, "status"),
        ({"status": "failed", "limit": 1001}, "limit"),
        ({"status": "failed", "limit": "5"}, "limit"),
        ({"ids": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"], "limit": 5}, "body"),
        ({"status": "failed", "force": True}, "force"),
    ],
)
async def test_a_bad_retry_is_a_422_naming_the_field_without_reaching_redis(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
    body: dict[str, Any],
    field: str,
) -> None:
    before = gateway_requests()
    response = await api.post("/api/jobs/retry", json=body, headers=service_headers)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert gateway_requests() == before


# Purge --------------------------------------------------------------------------------------


async def test_purge_deletes_finished_jobs_older_than_asked_and_keeps_the_rest(
    api: httpx.AsyncClient,
    *,
    service_headers: dict[str, str],
    harness: QueueHarness,
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    old = await fill_every_state(harness, queue_clock.now - 3 * HOUR_MS, per_state=2)
    young = await fill_every_state(harness, queue_clock.now - 10_000, per_state=2)
    redis_direct.zadd(KEYS.webhooks, {old.of(JobStatus.COMPLETED)[0]: 1})

    before = gateway_requests()
    response = await api.post(
        "/api/jobs/purge",
        json={"status": "completed", "olderThanS": 3600},
        headers=service_headers,
    )

    assert gateway_requests() - before == 2
    assert response.status_code == 200
    assert response.json() == {"purged": 2, "remaining": 0}
    for job_id in old.of(JobStatus.COMPLETED):
        assert not redis_direct.exists(KEYS.job(job_id))
    assert harness.members(KEYS.done("completed")) == young.of(JobStatus.COMPLETED)
    assert redis_direct.zcard(KEYS.webhooks) == 0
    for job_id in old.of(JobStatus.FAILED) + old.of(JobStatus.PENDING):
        assert redis_direct.exists(KEYS.job(job_id))


async def test_purge_works_in_batches_and_counts_what_remains(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    harness: QueueHarness,
    queue_clock: FrozenClock,
) -> None:
    await fill_every_state(harness, queue_clock.now - HOUR_MS, per_state=5)
    body = {"status": "failed", "olderThanS": 0, "limit": 2}

    counts = [
        (await api.post("/api/jobs/purge", json=body, headers=service_headers)).json()
        for _ in range(4)
    ]

    assert counts == [
        {"purged": 2, "remaining": 3},
        {"purged": 2, "remaining": 1},
        {"purged": 1, "remaining": 0},
        {"purged": 0, "remaining": 0},
    ]


async def test_purge_spares_a_job_retried_since_it_was_listed(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    states: QueueStates,
    harness: QueueHarness,
    redis_direct: redis.Redis,
) -> None:
    retried = states.of(JobStatus.FAILED)[0]
    redis_direct.hset(KEYS.job(retried), "status", "pending")  # between the read and the script

    response = await api.post(
        "/api/jobs/purge", json={"status": "failed", "olderThanS": 0}, headers=service_headers
    )

    assert response.json() == {"purged": 2, "remaining": 0}
    assert harness.job(retried)["status"] == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"olderThanS": 0}, "status"),
        ({"status": "pending", "olderThanS": 0}, "status"),
        ({"status": "failed"}, "olderThanS"),
        ({"status": "failed", "olderThanS": -1}, "olderThanS"),
        ({"status": "failed", "olderThanS": "7d"}, "olderThanS"),
        ({"status": "failed", "olderThanS": 0, "limit": 0}, "limit"),
    ],
)
async def test_a_bad_purge_is_a_422_naming_the_field_without_reaching_redis(
    api: httpx.AsyncClient,
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
    body: dict[str, Any],
    field: str,
) -> None:
    before = gateway_requests()
    response = await api.post("/api/jobs/purge", json=body, headers=service_headers)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert gateway_requests() == before


async def test_a_malformed_body_is_a_400(
    api: httpx.AsyncClient, service_headers: dict[str, str]
) -> None:
    response = await api.post(
        "/api/jobs/purge",
        content=b"{nope",
        headers={**service_headers, "content-type": "application/json"},
    )

    assert response.status_code == 400
