"""A queue with jobs in every state, made by the product's own scripts (enqueue, claim, complete,
fail, cancel) through a `QueueHarness`, for the tests of listing, retry, purge and migration."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.queue.leases import complete_job, fail_job
from shared.queue.models import JobError, JobStatus
from shared.queue.status import cancel_job
from tests.support.harness import QueueHarness


@dataclass
class QueueStates:
    """Job ids by status, oldest first."""

    ids: dict[JobStatus, list[str]] = field(default_factory=dict)

    def of(self, status: JobStatus) -> list[str]:
        return self.ids.get(status, [])

    def add(self, status: JobStatus, job_id: str) -> None:
        self.ids.setdefault(status, []).append(job_id)


async def fill_every_state(
    harness: QueueHarness, now_ms: int, *, per_state: int = 2, users: tuple[str, ...] = ("u1",)
) -> QueueStates:
    """`per_state` jobs of each status, one millisecond apart, users taken in turn. The running
    and finished jobs are enqueued at priority 0 and claimed at once; the pending ones wait at
    priorities 1-9, so a second call claims only its own."""
    states = QueueStates()
    clock = iter(range(now_ms, now_ms + 100_000))

    def user(i: int) -> str:
        return users[i % len(users)]

    started = [
        await harness.enqueue(next(clock), user(i), priority=0) for i in range(3 * per_state)
    ]
    claimed = []
    while len(claimed) < len(started):
        claimed += await harness.claim(
            count=min(100, len(started) - len(claimed)), now_ms=next(clock)
        )
    assert [job.lease.job_id for job in claimed] == started
    for job in claimed[:per_state]:
        states.add(JobStatus.PROCESSING, job.lease.job_id)
    for job in claimed[per_state : 2 * per_state]:
        await complete_job(
            harness.redis,
            harness.settings,
            harness.keys,
            job.lease,
            '{"ok":true}',
            now_ms=next(clock),
        )
        states.add(JobStatus.COMPLETED, job.lease.job_id)
    for job in claimed[2 * per_state :]:
        error = JobError(message="the model ran out of memory", kind="RuntimeError")
        await fail_job(
            harness.redis, harness.settings, harness.keys, job.lease, error, retry_at_ms=None,
            now_ms=next(clock),
        )  # fmt: skip
        states.add(JobStatus.FAILED, job.lease.job_id)
    for i in range(per_state):
        job_id = await harness.enqueue(next(clock), user(i))
        await cancel_job(harness.redis, harness.settings, job_id, None, next(clock))
        states.add(JobStatus.CANCELLED, job_id)
    for i in range(per_state):
        states.add(
            JobStatus.PENDING, await harness.enqueue(next(clock), user(i), priority=1 + i % 9)
        )
    for i in range(per_state):
        job_id = await harness.enqueue(next(clock), user(i), delayMs=60_000 + i)
        states.add(JobStatus.DELAYED, job_id)
    return states
