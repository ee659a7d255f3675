"""Each script's cost model against Redis's own INFO commandstats, call by call: every branch
the product takes, priced by the meter exactly as Upstash would bill it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import redis

from local.stack import Gateway
from shared import clock
from shared.errors import AppError
from shared.queue.beat import BeatRequest, HeldLease, beat, settle
from shared.queue.claim import ClaimedJob, lease_jobs, start_jobs, take_job
from shared.queue.enqueue import enqueue_job, enqueue_jobs
from shared.queue.leases import (
    Completion,
    HandBack,
    Lease,
    complete_job,
    complete_jobs,
    fail_job,
    finish_cancelled,
    release_jobs,
    report_progress,
)
from shared.queue.listing import JobListQuery, list_jobs
from shared.queue.models import (
    EnqueueRequest,
    JobError,
    JobStatus,
    Progress,
    WebhookState,
    WebhookStatus,
)
from shared.queue.new_job import new_job
from shared.queue.purge import purge_jobs
from shared.queue.retry import retry_jobs
from shared.queue.stats import queue_stats
from shared.queue.status import cancel_job
from shared.ratelimit.checks import checks_for, checks_for_enqueue
from shared.ratelimit.standalone import check_rate_limits
from shared.store.scripts import load_script, script_names
from shared.usage import meter
from shared.usage.meter import MeterKey, usage_meter
from shared.usage.script_costs import SCRIPT_COSTS
from shared.webhooks.outbox import claim_delivery, record_delivery
from tests.support.harness import T0_MS, QueueHarness, make_harness
from tests.support.webhook_receiver import end_with_callback

T = TypeVar("T")
# Where a reply cannot tell which branch ran, the model takes the common one; these calls take
# the other (how many commands the price is over).
KNOWN_OVER = {
    "complete repeated": 3,  # a lost reply retried: answered from the job, priced as the first
    "settle": 2,  # a lease of a job never started goes back to ready without HSET + PUBLISH
}
POLICIES = "user:3/1m@fixed,user:100/1d,ip:20/1h@token"
BOOM = JobError(message="boom", kind="error")
URL = "https://hooks.example.com/done"


@pytest.fixture(autouse=True)
def _no_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prices only: no request carries a flush here (the transport tests cover those)."""
    monkeypatch.setattr(meter, "FLUSH_EVERY_COMMANDS", 10**9)


@dataclass
class Prices:
    """Runs operations one at a time; for each, what Redis counted and what the meter priced."""

    queue: QueueHarness
    billed: Callable[[], int]
    rows: list[tuple[str, int, int]] = field(default_factory=list)

    def priced(self) -> int:
        key = MeterKey.of(self.queue.settings)
        return sum(usage_meter.pending(key, meter.utc_day(ms)) for ms in (T0_MS, clock.now_ms()))

    async def of(self, name: str, operation: Awaitable[T]) -> T:
        billed, priced = self.billed(), self.priced()
        value = await operation
        self.rows.append((name, self.billed() - billed, self.priced() - priced))
        return value

    def wrong(self) -> list[tuple[str, int, int]]:
        return [row for row in self.rows if row[2] - row[1] != KNOWN_OVER.get(row[0], 0)]


@pytest.fixture
async def prices(
    gateway: Gateway, redis_direct: redis.Redis, billed_commands: Callable[[], int]
) -> Prices:
    return Prices(make_harness(gateway, redis_direct, RATELIMIT_POLICIES=POLICIES), billed_commands)


async def enqueue(queue: QueueHarness, *, limited: bool = False, **fields: object) -> str:
    body = {"type": "cost.job", "data": {}, **fields}
    request = EnqueueRequest.model_validate(body, context={"now_ms": T0_MS})
    job = new_job(request, "user-1", request.idempotency_key, T0_MS)
    checks = checks_for_enqueue(queue.settings, "user-1", "203.0.113.7") if limited else []
    await enqueue_job(queue.redis, queue.settings, job, checks)
    return job.id


async def claim(prices: Prices, count: int, name: str = "") -> list[ClaimedJob]:
    r, s, k = prices.queue.redis, prices.queue.settings, prices.queue.keys
    leases = await prices.of(
        f"lease {count} {name}", lease_jobs(r, s, k, count=count, now_ms=T0_MS)
    )
    return await prices.of(f"start {len(leases)} {name}", start_jobs(r, s, k, leases, now_ms=T0_MS))


def test_every_script_run_alone_has_a_cost_model() -> None:
    included = {part for name in script_names() for part in load_script(name).parts[1:]}
    runnable = set(script_names()) - included
    assert runnable - set(SCRIPT_COSTS) == set(), "price these in shared/usage/script_costs.py"


async def test_the_function_side_is_priced_as_billed(prices: Prices) -> None:
    q, r, s = prices.queue, prices.queue.redis, prices.queue.settings
    await prices.of("enqueue bare", enqueue(q))
    await prices.of("enqueue limited", enqueue(q, limited=True))
    await prices.of("enqueue idempotent", enqueue(q, limited=True, idempotencyKey="k"))
    await prices.of("enqueue replayed", enqueue(q, limited=True, idempotencyKey="k"))
    await prices.of(
        "enqueue reused", _refused(enqueue(q, limited=True, idempotencyKey="k", priority=1))
    )
    await prices.of("enqueue denied", enqueue(q, limited=True))  # answered, nothing created
    pending = await enqueue(q)
    delayed = await enqueue(q, delayMs=60_000)
    await prices.of("cancel pending", cancel_job(r, s, pending, "user-1", T0_MS + 1))
    await prices.of("cancel again", cancel_job(r, s, pending, "user-1", T0_MS + 2))
    await prices.of("cancel delayed", cancel_job(r, s, delayed, None, T0_MS + 1))
    await prices.of("cancel missing", _refused(cancel_job(r, s, "nope", None, T0_MS + 1)))
    await prices.of("stats", queue_stats(r, s, now_ms=T0_MS + 2))
    checks = checks_for(s, "user", "user-2")
    await prices.of("ratelimit allowed", check_rate_limits(s, checks))
    await prices.of("ratelimit peek", check_rate_limits(s, checks, consume=False))
    for _ in range(3):
        await check_rate_limits(s, checks)
    await prices.of("ratelimit denied", check_rate_limits(s, checks))

    assert prices.wrong() == []


async def test_batches_and_the_result_cache_are_priced_as_billed(prices: Prices) -> None:
    q, r, s, k = prices.queue, prices.queue.redis, prices.queue.settings, prices.queue.keys
    cached = await prices.of("enqueue cached", enqueue(q, limited=True, cacheKey="c"))
    await prices.of("enqueue attached", enqueue(q, limited=True, cacheKey="c"))
    [job] = await claim(prices, 1)
    assert job.lease.job_id == cached
    await complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 1)
    await prices.of("enqueue hit", enqueue(q, limited=True, cacheKey="c"))
    bodies: list[dict[str, Any]] = [
        {"type": "cost.job", "data": {}, "cacheKey": "b"},
        {"type": "cost.job", "data": {}, "cacheKey": "b"},
        {"type": "cost.job", "data": {}, "delayMs": 5_000, "idempotencyKey": "i"},
        {"type": "cost.job", "data": {}},
    ]
    jobs = [
        new_job(EnqueueRequest.model_validate(body), "user-2", body.get("idempotencyKey"), T0_MS)
        for body in bodies
    ]
    checks = checks_for_enqueue(s, "user-2", "203.0.113.8")
    await prices.of("batch", enqueue_jobs(r, s, jobs, checks))
    await prices.of("batch replayed", enqueue_jobs(r, s, jobs, checks))

    assert prices.wrong() == []


async def test_the_worker_side_is_priced_as_billed(prices: Prices) -> None:
    q, r, s, k = prices.queue, prices.queue.redis, prices.queue.settings, prices.queue.keys
    await prices.of("lease empty", lease_jobs(r, s, k, count=2, now_ms=T0_MS))
    for _ in range(4):
        await enqueue(q)
    done, retried, failed, handed_back = await claim(prices, 4)
    await prices.of("progress", report_progress(r, s, k, done.lease, Progress(percent=10)))
    await prices.of("complete", complete_job(r, s, k, done.lease, "1", now_ms=T0_MS + 5))
    await prices.of("complete repeated", complete_job(r, s, k, done.lease, "1", now_ms=T0_MS + 6))
    await prices.of("progress stale", report_progress(r, s, k, done.lease, Progress(percent=20)))
    await prices.of(
        "fail retrying", fail_job(r, s, k, retried.lease, BOOM, retry_at_ms=T0_MS + 9, now_ms=T0_MS)
    )
    await prices.of(
        "fail final", fail_job(r, s, k, failed.lease, BOOM, retry_at_ms=None, now_ms=T0_MS)
    )
    hand_back = HandBack(handed_back.lease, handed_back.priority, handed_back.attempt - 1)
    await prices.of(
        "release", release_jobs(r, s, k, [hand_back], now_ms=T0_MS, sign_off_worker_id="w")
    )
    await prices.of("conflict", _refused(cancel_job(r, s, done.lease.job_id, None, T0_MS + 7)))
    for _ in range(3):
        await enqueue(q, callbackUrl=URL)
    stopped, late, called = await claim(prices, 3, "with callbacks")
    for job in (stopped, late):
        await prices.of("cancel running", cancel_job(r, s, job.lease.job_id, None, T0_MS + 8))
    await prices.of("cancel requested again", cancel_job(r, s, late.lease.job_id, None, T0_MS + 9))
    await prices.of(
        "finish cancelled",
        finish_cancelled(r, s, k, stopped.lease, now_ms=T0_MS + 9, callback=True),
    )
    await prices.of(
        "complete cancelled",
        complete_job(r, s, k, late.lease, "1", now_ms=T0_MS + 9, callback=True),
    )
    await prices.of(
        "complete with callback",
        complete_job(r, s, k, called.lease, "1", now_ms=T0_MS + 9, callback=True),
    )
    for _ in range(3):
        await enqueue(q)
    first, second, third = await claim(prices, 3, "to complete together")
    await prices.of(
        "complete two",
        complete_jobs(
            r, s, k, [Completion(job.lease, "1") for job in (first, second)], now_ms=T0_MS + 9
        ),
    )
    forged = Completion(Lease(first.lease.job_id, "x"), "1")
    await prices.of(
        "complete two, one stale",
        complete_jobs(r, s, k, [Completion(third.lease, "1"), forged], now_ms=T0_MS + 9),
    )
    named, told = await enqueue(q), await enqueue(q)
    await prices.of("take", take_job(r, s, k, named, now_ms=T0_MS, worker_id="w"))
    await prices.of("take gone", take_job(r, s, k, named, now_ms=T0_MS, worker_id="w"))
    await prices.of(
        "take announced", take_job(r, s, k, told, now_ms=T0_MS, worker_id="w", announce=True)
    )
    await prices.of(
        "take missed announced",
        take_job(r, s, k, told, now_ms=T0_MS, worker_id="w", announce=True),
    )
    await prices.of(
        "lease drained announced",
        lease_jobs(r, s, k, count=2, now_ms=T0_MS, worker_id="w", announce=True),
    )

    assert prices.wrong() == []


async def test_the_beat_and_settle_are_priced_as_billed(prices: Prices) -> None:
    q, r, s, k = prices.queue, prices.queue.redis, prices.queue.settings, prices.queue.keys
    await prices.of("beat idle", beat(r, s, k, BeatRequest("w", [], 1, T0_MS)))
    await enqueue(q, timeoutMs=1_000)
    await enqueue(q, timeoutMs=1_000, maxAttempts=1)
    running = await claim(prices, 2)
    held = [HeldLease(job.lease.member, job.timeout_ms) for job in running]
    await prices.of("beat busy", beat(r, s, k, BeatRequest("w", held, 2, T0_MS + 1)))
    await enqueue(q)
    await lease_jobs(r, s, k, count=1, now_ms=T0_MS)  # leased, never started
    await enqueue(q, timeoutMs=1_000)
    [unconfirmed] = await claim(prices, 1)
    await cancel_job(r, s, unconfirmed.lease.job_id, None, T0_MS + 1)  # its worker is gone
    await enqueue(q, delayMs=1_000)
    lost = HeldLease("gone|t", 1_000)
    housekeeping = BeatRequest("w", [lost, *held], 1, T0_MS + 100, T0_MS, T0_MS)
    await prices.of("beat housekeeping, a lease lost", beat(r, s, k, housekeeping))
    late = BeatRequest("w", [], 1, T0_MS + 3_600_000)
    found = await prices.of("beat late", beat(r, s, k, late))
    await prices.of(
        "settle", settle(r, s, k, expired=found.expired, due=found.due, now_ms=late.now_ms)
    )
    await prices.of(
        "settle again", settle(r, s, k, expired=found.expired, due=found.due, now_ms=late.now_ms)
    )

    assert prices.wrong() == []


async def test_the_webhooks_and_operator_scripts_are_priced_as_billed(prices: Prices) -> None:
    q, r, s, k = prices.queue, prices.queue.redis, prices.queue.settings, prices.queue.keys
    kept, expired, bare = [await enqueue(q, callbackUrl=URL) for _ in range(2)] + [await enqueue(q)]
    for job_id in (kept, expired, bare):
        end_with_callback(q.direct, k, job_id, now_ms=T0_MS)
    claimed = await prices.of("claim", claim_delivery(r, s, k, kept, now_ms=T0_MS))
    await prices.of("claim not due", claim_delivery(r, s, k, kept, now_ms=T0_MS))
    await prices.of("claim gone", claim_delivery(r, s, k, bare, now_ms=T0_MS))
    assert claimed is not None
    retrying = WebhookState(status=WebhookStatus.PENDING, attempts=1, last_error="HTTP 500")
    await prices.of("record", record_delivery(r, s, k, claimed, retrying, next_try_at_ms=T0_MS + 1))
    await prices.of(
        "record stale", record_delivery(r, s, k, claimed, retrying, next_try_at_ms=None)
    )
    other = await claim_delivery(r, s, k, expired, now_ms=T0_MS)
    assert other is not None
    q.direct.delete(k.job(expired))
    await prices.of("record gone", record_delivery(r, s, k, other, retrying, next_try_at_ms=None))

    for _ in range(3):
        await enqueue(q)
    jobs = await claim(prices, 3)
    for job in jobs:
        await fail_job(r, s, k, job.lease, BOOM, retry_at_ms=None, now_ms=T0_MS + 10)
    await prices.of("list", list_jobs(r, s, JobListQuery(status=JobStatus.FAILED, limit=2)))
    await prices.of("retry", retry_jobs(r, s, [jobs[0].lease.job_id, "nope"], T0_MS + 20))
    await prices.of(
        "retry by status", retry_jobs(r, s, [jobs[1].lease.job_id], T0_MS + 20, mode="failed")
    )
    await prices.of("purge", purge_jobs(r, s, "completed", T0_MS + 10**9, 10))
    await prices.of("purge failed", purge_jobs(r, s, "failed", T0_MS + 10**9, 10))

    assert prices.wrong() == []


async def _refused(operation: Awaitable[object]) -> None:
    """An operation the product refuses (a 4xx): its script still ran and was billed."""
    with pytest.raises(AppError):
        await operation
