"""The jobs a worker is running: one `JobRun` and its task per claimed job, each in a slot.

A run leaves the table when its task ends: its outcome reported (or refused), the report
impossible in time, or the task cancelled at shutdown. A run is stopped (`JobRun.cancel`) when
its owner cancels the job (`"<id> cancel"` on the events channel) or the beat finds its lease
gone; from then on the worker neither renews its lease nor hands it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from shared.errors import BadRedisReply, RedisUnavailable
from shared.queue.backoff import Backoff
from shared.queue.claim import ClaimedJob
from shared.queue.leases import LeaseOutcome
from worker.isolation.runner import Runner
from worker.running import CANCEL_REQUESTED, JobRun, QueueHandle
from worker.slots import Slots

RunEnded = Callable[[JobRun, LeaseOutcome | None], None]


class Runs:
    def __init__(self, runner: Runner, backoff: Backoff, slots: Slots, on_end: RunEnded) -> None:
        self._runner = runner
        self._backoff = backoff
        self._slots = slots
        self._on_end = on_end
        self._entries: dict[str, tuple[JobRun, asyncio.Task[None]]] = {}  # by lease member

    def __len__(self) -> int:
        return len(self._entries)

    def holding(self) -> list[JobRun]:
        """The runs whose leases this worker renews (and hands back at shutdown)."""
        return [run for run, _ in self._entries.values() if run.holds_lease]

    def start(self, queue: QueueHandle, jobs: Sequence[ClaimedJob]) -> None:
        for claimed in jobs:
            after = self._slots.still_running(claimed.lease.job_id)
            run = JobRun(queue, claimed, self._runner, self._backoff, after=after)
            task = asyncio.create_task(self._execute(run))
            self._entries[claimed.lease.member] = (run, task)
            self._slots.take(run, task)
            run.log_claimed()

    async def _execute(self, run: JobRun) -> None:
        outcome: LeaseOutcome | None = None
        try:
            outcome = await run.execute()
        except (RedisUnavailable, BadRedisReply) as error:
            # The lease expires and the job returns to ready (or ends cancelled): nothing is lost.
            run.log_report_failed(error)
        finally:
            self._entries.pop(run.claimed.lease.member, None)
            self._on_end(run, outcome)

    def cancel_job(self, job_id: str) -> None:
        """Its owner cancelled the job: stop it, if it runs here."""
        for run, _ in list(self._entries.values()):
            if run.job_id == job_id:
                run.cancel(CANCEL_REQUESTED)

    def abandon(self, member: str) -> None:
        """A lease the beat could not renew: stop the job, unless its outcome is already being
        reported (its own complete or fail may be what removed the lease)."""
        entry = self._entries.get(member)
        if entry is not None:
            entry[0].cancel("renewal refused")

    def cancel_all(self) -> list[asyncio.Task[None]]:
        tasks = [task for _, task in self._entries.values()]
        for task in tasks:
            task.cancel()
        return tasks
