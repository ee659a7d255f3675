"""Every key a script touches is passed in KEYS (SPEC §6: Redis Cluster and Upstash key locking
both need it). Statically: no script builds a key name. Dynamically: every operation of the
queue runs through the gateway while Redis's MONITOR records what each script did, and every
key of every command a script ran must be one of the keys its EVALSHA declared."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest
import redis

from local.stack import Gateway, LocalStack
from shared.errors import Conflict
from shared.queue.beat import BeatRequest, HeldLease, beat, settle
from shared.queue.claim import ClaimedJob, lease_jobs, start_jobs, take_job
from shared.queue.enqueue import enqueue_job, enqueue_jobs
from shared.queue.job_ids import idempotent_job_id, new_job_id
from shared.queue.leases import (
    Completion,
    HandBack,
    LeaseOutcome,
    complete_job,
    complete_jobs,
    fail_job,
    finish_cancelled,
    release_jobs,
    report_progress,
)
from shared.queue.models import EnqueueRequest, JobError, Progress, WebhookState, WebhookStatus
from shared.queue.new_job import NewJob, new_job
from shared.queue.routing import TypeFilter
from shared.queue.stats import queue_stats
from shared.queue.status import cancel_job
from shared.ratelimit.checks import checks_for, checks_for_enqueue
from shared.ratelimit.standalone import check_rate_limits
from shared.schedules.firing import advance_schedules
from shared.store.scripts import Script, load_script, run_script, script_names, script_path
from shared.webhooks.outbox import claim_delivery, record_delivery
from tests.support.harness import T0_MS, QueueHarness, make_harness
from tests.support.redis_monitor import SCRIPT_COMMANDS, Command, Monitor, keys_of
from tests.support.scripts import preload_scripts
from tests.support.webhook_receiver import end_with_callback

T = TypeVar("T")
SCRIPTS = script_names()
POLICIES = "user:20/1m@fixed,user:100/1d,ip:30/1h@token"
BOOM = JobError(message="boom", kind="error")
REDIS_CALL = re.compile(r"redis\.p?call\(\s*['\"](\w+)['\"]\s*,\s*([^,)]+)")


def script_text(name: str) -> str:
    return script_path(name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_script_builds_a_key_name(name: str) -> None:
    code = "\n".join(line.split("--")[0] for line in script_text(name).splitlines())
    assert not re.search(r"KEYS\[[^\]]*\]\s*\.\.|\.\.\s*KEYS\[", code), "a KEYS entry extended"
    assert "prefix" not in code.lower(), "a key prefix passed in to build keys from"
    for command, first_arg in REDIS_CALL.findall(code):
        if command.upper() != "PUBLISH":
            assert ".." not in first_arg, f"{command} on a key built inside the script"
            assert not first_arg.strip().startswith(("'", '"')), f"{command} on a literal key"


def test_the_static_check_catches_a_key_built_from_a_prefix() -> None:
    built = "local job = redis.call('HGET', KEYS[3] .. id, 'status')"
    assert re.search(r"KEYS\[[^\]]*\]\s*\.\.", built)
    assert ".." in REDIS_CALL.findall(built)[0][1]


class KeyAudit:
    """Runs operations one at a time and checks the keys of what each script ran."""

    def __init__(self, monitor: Monitor, direct: redis.Redis) -> None:
        self._monitor = monitor
        self._direct = direct
        self._scripts = {load_script(name).sha1: load_script(name) for name in SCRIPTS}
        self._by_source = {script.source: script for script in self._scripts.values()}
        self.files_seen: set[str] = set()

    async def run(self, operation: Awaitable[T]) -> T:
        self._monitor.commands()
        value = await operation
        self.check(self._monitor.commands())
        return value

    def check(self, commands: list[Command]) -> None:
        (script_call,) = [c for c in commands if c.client != "lua" and c.name in SCRIPT_COMMANDS]
        script = self._script(script_call)
        name = script.name
        declared = set(keys_of(self._direct, script_call.args))
        ran = [c for c in commands if c.client == "lua"]
        assert ran, f"{name} ran no command"
        for command in ran:
            undeclared = set(keys_of(self._direct, command.args)) - declared
            assert not undeclared, f"{name}: {command.args[:3]} touches undeclared {undeclared}"
        self.files_seen |= set(script.parts)

    def _script(self, call: Command) -> Script:
        found = (self._by_source if call.name == "EVAL" else self._scripts).get(call.args[1])
        return found or Script(f"a script not in shared/*/lua ({call.args[1][:12]})", "", "")


@pytest.fixture
def audit(local_stack: LocalStack, redis_direct: redis.Redis) -> Iterator[KeyAudit]:
    preload_scripts(redis_direct)
    monitor = Monitor(local_stack.redis.url, redis_direct)
    yield KeyAudit(monitor, redis_direct)
    monitor.close()


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    preload_scripts(redis_direct)
    return make_harness(gateway, redis_direct, RATELIMIT_POLICIES=POLICIES)


async def enqueue(queue: QueueHarness, now_ms: int = T0_MS, **fields: object) -> str:
    """Through the enqueue script with every configured user and ip policy."""
    body = {"type": "audit.job", "data": {}, **fields}
    request = EnqueueRequest.model_validate(body, context={"now_ms": now_ms})
    idempotency_key = request.idempotency_key
    job_id = idempotent_job_id("user-1", idempotency_key) if idempotency_key else new_job_id(now_ms)
    new_job = NewJob(job_id, request, "user-1", idempotency_key, now_ms)
    checks = checks_for_enqueue(queue.settings, "user-1", "203.0.113.7")
    await enqueue_job(queue.redis, queue.settings, new_job, checks)
    return job_id


async def claim(audit: KeyAudit, queue: QueueHarness, count: int) -> list[ClaimedJob]:
    r, s, k = queue.redis, queue.settings, queue.keys
    leases = await audit.run(lease_jobs(r, s, k, count=count, now_ms=T0_MS))
    return await audit.run(start_jobs(r, s, k, leases, now_ms=T0_MS))


async def test_the_audit_catches_a_script_that_touches_a_key_it_built(
    audit: KeyAudit, queue: QueueHarness, redis_direct: redis.Redis
) -> None:
    source = "return redis.call('HGET', KEYS[1] .. 'job:x', 'status')"
    script = Script("builds_a_key", source, redis_direct.script_load(source))
    r, s, k = queue.redis, queue.settings, queue.keys

    with pytest.raises(AssertionError, match="touches undeclared"):
        await audit.run(run_script(r, s, script, [k.prefix], []))


async def test_every_script_touches_only_the_keys_it_declares(
    audit: KeyAudit, queue: QueueHarness
) -> None:
    await run_the_function_side(audit, queue)
    await run_the_worker_side(audit, queue)
    await run_the_beat_and_settle(audit, queue)
    await run_the_webhooks(audit, queue)
    await run_the_batches_and_the_cache(audit, queue)

    # The operator scripts are audited the same way in tests/shared/queue/test_operator_scripts.py
    # and the alert scripts in tests/shared/alerts/test_alert_script_keys.py.
    operator_scripts = {"queue/index_page", "queue/retry_jobs", "queue/purge_jobs"}
    operator_scripts |= {"alerts/check_alerts", "alerts/record_alerts"}
    assert audit.files_seen == set(SCRIPTS) - operator_scripts, "every script was exercised"


async def run_the_function_side(audit: KeyAudit, queue: QueueHarness) -> None:
    s, r = queue.settings, queue.redis
    await audit.run(enqueue(queue, idempotencyKey="same"))
    await audit.run(enqueue(queue, idempotencyKey="same"))  # a replay reads the job
    pending = await audit.run(enqueue(queue))
    delayed = await audit.run(enqueue(queue, delayMs=60_000))
    await audit.run(cancel_job(r, s, pending, "user-1", T0_MS + 1))
    await audit.run(cancel_job(r, s, delayed, None, T0_MS + 1))
    await audit.run(queue_stats(r, s, now_ms=T0_MS + 2))
    checks = checks_for(s, "user", "user-1")
    await audit.run(check_rate_limits(s, checks))


async def run_the_worker_side(audit: KeyAudit, queue: QueueHarness) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    for _ in range(6):
        await enqueue(queue)
    done, retried, failed, handed_back, *pair = await claim(audit, queue, count=6)
    await audit.run(report_progress(r, s, k, done.lease, Progress(percent=10)))
    await audit.run(complete_job(r, s, k, done.lease, "1", now_ms=T0_MS + 5))
    await audit.run(complete_job(r, s, k, done.lease, "1", now_ms=T0_MS + 6))  # a repeat
    await audit.run(fail_job(r, s, k, retried.lease, BOOM, retry_at_ms=T0_MS + 9, now_ms=T0_MS))
    await audit.run(fail_job(r, s, k, failed.lease, BOOM, retry_at_ms=None, now_ms=T0_MS))
    await audit.run(fail_job(r, s, k, failed.lease, BOOM, retry_at_ms=None, now_ms=T0_MS))
    hand_back = HandBack(handed_back.lease, handed_back.priority, handed_back.attempt - 1)
    await audit.run(release_jobs(r, s, k, [hand_back], now_ms=T0_MS, sign_off_worker_id="w"))
    with pytest.raises(Conflict):
        await audit.run(cancel_job(r, s, done.lease.job_id, None, T0_MS + 7))
    completions = [Completion(job.lease, "1") for job in pair]
    await audit.run(complete_jobs(r, s, k, completions, now_ms=T0_MS + 5))
    named = await enqueue(queue)
    await audit.run(take_job(r, s, k, named, now_ms=T0_MS, worker_id="w", announce=True))
    await audit.run(take_job(r, s, k, named, now_ms=T0_MS, worker_id="w"))  # gone
    await run_the_cancels_and_callbacks(audit, queue)


async def run_the_cancels_and_callbacks(audit: KeyAudit, queue: QueueHarness) -> None:
    """A running job cancelled then confirmed, one whose result comes after the cancel, and
    endings of jobs with a callback (which schedule its delivery)."""
    r, s, k = queue.redis, queue.settings, queue.keys
    for _ in range(3):
        await enqueue(queue, callbackUrl="https://hooks.example.com/done")
    stopped, late, called = await claim(audit, queue, count=3)
    for job in (stopped, late):
        await audit.run(cancel_job(r, s, job.lease.job_id, None, T0_MS + 8))
    outcome = await audit.run(
        finish_cancelled(r, s, k, stopped.lease, now_ms=T0_MS + 9, callback=True)
    )
    assert outcome is LeaseOutcome.CANCELLED
    outcome = await audit.run(complete_job(r, s, k, late.lease, "1", now_ms=T0_MS + 9))
    assert outcome is LeaseOutcome.CANCELLED
    outcome = await audit.run(
        complete_job(r, s, k, called.lease, "1", now_ms=T0_MS + 9, callback=True)
    )
    assert outcome is LeaseOutcome.COMPLETED
    assert queue.direct.zcard(k.webhooks) == 2


async def run_the_beat_and_settle(audit: KeyAudit, queue: QueueHarness) -> None:
    """Every branch of settle: a running job back to ready, a last attempt failed, a job leased
    but never started, a due delayed job, and a stale entry."""
    r, s, k = queue.redis, queue.settings, queue.keys
    queue.direct.flushdb()
    await enqueue(queue, timeoutMs=1_000)
    await enqueue(queue, timeoutMs=1_000, maxAttempts=1)
    await claim(audit, queue, count=2)
    await enqueue(queue)
    await audit.run(lease_jobs(r, s, k, count=1, now_ms=T0_MS))
    await enqueue(queue, timeoutMs=1_000)
    [unconfirmed] = await claim(audit, queue, count=1)
    await cancel_job(r, s, unconfirmed.lease.job_id, None, T0_MS + 1)  # its worker is gone
    await enqueue(queue, delayMs=1_000)
    queue.direct.zadd(k.delayed, {"gone": T0_MS})
    queue.direct.hset(k.workers, "dead", '{"lastSeenMs":1}')
    lost = HeldLease("gone|t", 1_000)
    request = BeatRequest("w", [lost], 1, T0_MS + 100, T0_MS, T0_MS)  # with housekeeping
    await audit.run(beat(r, s, k, request))
    late = BeatRequest("w", [], 1, T0_MS + 3_600_000)
    found = await audit.run(beat(r, s, k, late))
    assert (len(found.expired), len(found.due)) == (4, 2)
    settled = await audit.run(
        settle(r, s, k, expired=found.expired, due=found.due, now_ms=late.now_ms)
    )
    assert (settled.became_ready, settled.ended) == (3, 2)


async def run_the_webhooks(audit: KeyAudit, queue: QueueHarness) -> None:
    """Every branch of claim_delivery and record_delivery: claimed, not due, gone; recorded
    (a retry, then delivered), stale, gone."""
    r, s, k = queue.redis, queue.settings, queue.keys
    queue.direct.flushdb()
    url = "https://hooks.example/x"
    kept = await enqueue(queue, callbackUrl=url)
    expired = await enqueue(queue, callbackUrl=url)
    bare = await enqueue(queue)
    for job_id in (kept, expired, bare):
        end_with_callback(queue.direct, k, job_id, now_ms=T0_MS)
    claimed = await audit.run(claim_delivery(r, s, k, kept, now_ms=T0_MS))
    assert claimed is not None
    assert await audit.run(claim_delivery(r, s, k, kept, now_ms=T0_MS)) is None  # not due
    assert await audit.run(claim_delivery(r, s, k, bare, now_ms=T0_MS)) is None  # gone
    retrying = WebhookState(status=WebhookStatus.PENDING, attempts=1, last_error="HTTP 500")
    await audit.run(record_delivery(r, s, k, claimed, retrying, next_try_at_ms=T0_MS + 1))
    await audit.run(record_delivery(r, s, k, claimed, retrying, next_try_at_ms=None))  # stale
    other = await audit.run(claim_delivery(r, s, k, expired, now_ms=T0_MS))
    assert other is not None
    queue.direct.delete(k.job(expired))
    await audit.run(record_delivery(r, s, k, other, retrying, next_try_at_ms=None))  # gone


def cached(cache_key: str, now_ms: int = T0_MS, **fields: object) -> NewJob:
    body = {"type": "audit.job", "data": {}, "cacheKey": cache_key, "cacheTtlS": 60, **fields}
    request = EnqueueRequest.model_validate(body, context={"now_ms": now_ms})
    return new_job(request, "user-1", request.idempotency_key, now_ms)


async def run_the_batches_and_the_cache(audit: KeyAudit, queue: QueueHarness) -> None:
    """A batch of new, delayed, idempotent and cached jobs (one attached to another of the
    batch); a cached job attached to, hit, and replaced once it finished too long ago (with a
    callback: its delivery is dropped); a denied batch."""
    r, s, k = queue.redis, queue.settings, queue.keys
    queue.direct.flushdb()
    checks = checks_for_enqueue(s, "user-1", "203.0.113.7")
    batch = [
        cached("a", callbackUrl="https://hooks.example/x"),
        cached("a"),
        cached("b", idempotencyKey="kb"),
        cached("c", delayMs=60_000),
    ]
    created = await audit.run(enqueue_jobs(r, s, batch, checks))
    assert created.created == 3
    attached = await audit.run(enqueue_jobs(r, s, [cached("c")], checks))
    assert attached.jobs[0].status == "delayed"
    end_with_callback(queue.direct, k, batch[0].id, now_ms=T0_MS)
    hit = await audit.run(enqueue_jobs(r, s, [cached("a", T0_MS + 1)], checks))
    assert hit.jobs[0].status == "completed"
    replaced = await audit.run(enqueue_jobs(r, s, [cached("a", T0_MS + 120_000)], checks))
    assert replaced.created == 1
    assert queue.direct.zscore(k.webhooks, batch[0].id) is None
    many = [cached(f"d{n}", T0_MS + 120_000) for n in range(22)]
    denied = await audit.run(enqueue_jobs(r, s, many, checks))  # over user:20/1m
    assert denied.jobs == []
    records = [("hourly", T0_MS, 60_000), ("daily", T0_MS, 60_000)]
    assert await audit.run(advance_schedules(r, s, k, records)) == 2
    assert await audit.run(advance_schedules(r, s, k, records)) == 0


async def test_routed_and_limited_claims_and_their_endings_touch_only_declared_keys(
    audit: KeyAudit, gateway: Gateway, redis_direct: redis.Redis
) -> None:
    """The claim's `lanes` path (a --types worker, limits), the turns of a user joining a band
    others wait in, and every ending and hand-back that frees a slot."""
    queue = make_harness(
        gateway, redis_direct, TYPE_CONCURRENCY="audit.job:9", USER_CONCURRENCY="9"
    )
    r, s, k = queue.redis, queue.settings, queue.keys
    for n in range(6):
        await enqueue(queue, T0_MS + n, timeoutMs=1_000)
    request = EnqueueRequest.model_validate({"type": "audit.job", "data": {}})
    other_user = NewJob(new_job_id(T0_MS), request, "user-2", None, T0_MS + 9)
    # another user joins the waiting band: their turn trims the band's stale turns
    await audit.run(enqueue_job(r, s, other_user, checks_for_enqueue(s, "user-2", "192.0.2.1")))
    routed = TypeFilter.parse("audit.*")
    leases = await audit.run(lease_jobs(r, s, k, count=6, now_ms=T0_MS, types=routed))
    done, retried, failed, handed_back, cancelled, expired = await audit.run(
        start_jobs(r, s, k, leases, now_ms=T0_MS)
    )
    assert all(job.holds_slot for job in (done, retried, failed, handed_back))
    await audit.run(complete_job(r, s, k, done.lease, "1", now_ms=T0_MS, slot=True))
    retry_at = T0_MS + 9
    await audit.run(
        fail_job(r, s, k, retried.lease, BOOM, retry_at_ms=retry_at, now_ms=T0_MS, slot=True)
    )
    await audit.run(fail_job(r, s, k, failed.lease, BOOM, retry_at_ms=None, now_ms=1, slot=True))
    hand_back = HandBack(handed_back.lease, handed_back.priority, 0, "audit.job", "user-1", True)
    await audit.run(release_jobs(r, s, k, [hand_back], now_ms=T0_MS))
    await cancel_job(r, s, cancelled.lease.job_id, None, T0_MS)
    await audit.run(finish_cancelled(r, s, k, cancelled.lease, now_ms=T0_MS, slot=True))
    late = T0_MS + 3_600_000
    await audit.run(settle(r, s, k, expired=[expired.lease.member], due=[], now_ms=late))
    assert redis_direct.hlen(k.slots) == 0
