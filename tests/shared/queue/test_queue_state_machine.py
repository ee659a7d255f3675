"""A hypothesis state machine over the whole life of jobs, against real Redis behind the
gateway: any interleaving of enqueue, claim, renew, complete, fail (retry or final), cancel,
a worker dying, lease expiry and promotion keeps every job in exactly one place that matches
its status, and in the end every job reaches exactly one terminal state: none lost, none
completed twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from local.stack import Gateway
from shared.errors import Conflict, NotFound
from shared.queue.beat import BeatRequest, HeldLease, beat_and_settle
from shared.queue.claim import ClaimedJob
from shared.queue.leases import LeaseOutcome, complete_job, fail_job
from shared.queue.models import FINAL_STATUSES, JobError, JobStatus
from shared.queue.status import cancel_job
from tests.support.harness import T0_MS, QueueHarness, make_harness

T = TypeVar("T")
TIMEOUT_MS = 2_000
BOOM = JobError(message="boom", kind="error")


@dataclass
class World:
    gateway: Gateway
    direct: redis.Redis
    loop: asyncio.AbstractEventLoop


WORLD: World | None = None


class QueueLives(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None
        self.world = WORLD
        self.world.direct.flushdb()
        self.queue: QueueHarness = self.run(self._harness())
        self.now = T0_MS
        self.jobs: list[str] = []
        self.held: dict[str, ClaimedJob] = {}  # lease member -> the claim holding it
        self.zombies: list[ClaimedJob] = []  # claims whose holder died or lost the lease
        self.completions: Counter[str] = Counter()

    async def _harness(self) -> QueueHarness:
        return make_harness(self.world.gateway, self.world.direct)

    def run(self, operation: Awaitable[T]) -> T:
        return self.world.loop.run_until_complete(operation)

    def tick(self, ms: int = 10) -> int:
        self.now += ms
        return self.now

    @initialize()
    def first_job(self) -> None:
        self.enqueue(max_attempts=2)

    @rule(max_attempts=st.integers(1, 3))
    def enqueue(self, max_attempts: int) -> None:
        job_id = self.run(
            self.queue.enqueue(self.tick(), maxAttempts=max_attempts, timeoutMs=TIMEOUT_MS)
        )
        self.jobs.append(job_id)

    @rule(count=st.integers(1, 3))
    def claim(self, count: int) -> None:
        for job in self.run(self.queue.claim(count, self.tick(), worker_id="w-1")):
            self.held[job.lease.member] = job

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        job = self.held.pop(data.draw(st.sampled_from(sorted(self.held))))
        q = self.queue
        outcome = self.run(
            complete_job(q.redis, q.settings, q.keys, job.lease, '{"ok":1}', now_ms=self.tick())
        )
        if outcome is LeaseOutcome.COMPLETED:
            self.completions[job.lease.job_id] += 1

    @precondition(lambda self: self.held)
    @rule(data=st.data(), final=st.booleans())
    def fail(self, data: st.DataObject, final: bool) -> None:
        job = self.held.pop(data.draw(st.sampled_from(sorted(self.held))))
        retry_at_ms = None if final or job.attempt >= job.max_attempts else self.now + 1_000
        q = self.queue
        self.run(
            fail_job(
                q.redis, q.settings, q.keys, job.lease, BOOM, retry_at_ms=retry_at_ms,
                now_ms=self.tick(),
            )
        )  # fmt: skip

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.jobs))
        q = self.queue
        with contextlib.suppress(Conflict, NotFound):  # running or finished: nothing changes
            self.run(cancel_job(q.redis, q.settings, job_id, None, self.tick()))

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def worker_dies_holding(self, data: st.DataObject) -> None:
        """The holder stops: its lease is never renewed (it may come back as a zombie)."""
        self.zombies.append(self.held.pop(data.draw(st.sampled_from(sorted(self.held)))))

    @precondition(lambda self: self.zombies)
    @rule(data=st.data())
    def zombie_completes(self, data: st.DataObject) -> None:
        """A worker that was taken for dead reports a result: the fencing token decides."""
        job = self.zombies.pop(data.draw(st.integers(0, len(self.zombies) - 1)))
        q = self.queue
        outcome = self.run(
            complete_job(q.redis, q.settings, q.keys, job.lease, '{"late":1}', now_ms=self.tick())
        )
        if outcome is LeaseOutcome.COMPLETED:
            self.completions[job.lease.job_id] += 1

    @rule()
    def renew(self) -> None:
        self.beat("w-1", [HeldLease(m, TIMEOUT_MS) for m in sorted(self.held)], 10)

    @rule(ms=st.sampled_from([500, 1_500, TIMEOUT_MS + 1_000]))
    def time_passes(self, ms: int) -> None:
        """Another worker's beat settles what fell due: expired leases, due retries."""
        self.tick(ms)
        self.beat("w-2", [], 0)

    def beat(self, worker_id: str, held: list[HeldLease], extra_ms: int) -> None:
        q = self.queue
        request = BeatRequest(worker_id, held, concurrency=4, now_ms=self.tick(extra_ms))
        result, _ = self.run(beat_and_settle(q.redis, q.settings, q.keys, request))
        for member in result.lost:
            if member in self.held:
                self.zombies.append(self.held.pop(member))

    @invariant()
    def every_job_is_in_exactly_the_place_its_status_says(self) -> None:
        places = self.places()
        for job_id in self.jobs:
            status = self.queue.job(job_id).get("status")
            assert status is not None, f"job {job_id} was lost"
            where = places[job_id]
            if status == JobStatus.PENDING:
                assert where in (["ready"], ["leases"]), (job_id, status, where)
            elif status == JobStatus.PROCESSING:
                assert where == ["leases"], (job_id, status, where)
            else:
                assert where == [status], (job_id, status, where)

    @invariant()
    def no_job_completes_twice(self) -> None:
        assert all(count == 1 for count in self.completions.values()), self.completions

    def places(self) -> dict[str, list[str]]:
        keys, direct = self.queue.keys, self.world.direct
        found: dict[str, list[str]] = {job_id: [] for job_id in self.jobs}
        sets = {"ready": keys.ready, "delayed": keys.delayed, "leases": keys.leases}
        sets |= {status.value: keys.done(status) for status in FINAL_STATUSES}
        for place, key in sets.items():
            for member in direct.zrange(key, 0, -1):
                found.setdefault(str(member).partition("|")[0], []).append(place)
        return found

    def teardown(self) -> None:
        """Run everything to its end: every job ends in exactly one terminal state."""
        self.held.clear()  # whatever was held, its holder is gone now
        for _ in range(40):
            if all(self.queue.job(j)["status"] in FINAL_STATUSES for j in self.jobs):
                break
            self.time_passes(TIMEOUT_MS + 1_000)
            for job in self.run(self.queue.claim(10, self.tick(), worker_id="w-3")):
                self.held[job.lease.member] = job
                self.complete(_Always(job.lease.member))
        finals = Counter(self.queue.job(j)["status"] for j in self.jobs)
        assert sum(finals[status] for status in FINAL_STATUSES) == len(self.jobs), finals
        self.every_job_is_in_exactly_the_place_its_status_says()
        self.no_job_completes_twice()


class _Always:
    """A `st.data()` stand-in that always draws the given value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def draw(self, _strategy: object) -> Any:
        return self.value


@pytest.fixture
def world(gateway: Gateway, redis_direct: redis.Redis) -> Iterator[World]:
    global WORLD  # noqa: PLW0603 - hypothesis builds the machine itself, without arguments
    loop = asyncio.new_event_loop()
    WORLD = World(gateway, redis_direct, loop)
    yield WORLD
    WORLD = None
    loop.close()


def test_any_interleaving_ends_each_job_in_exactly_one_terminal_state(world: World) -> None:
    run_state_machine_as_test(
        QueueLives,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
