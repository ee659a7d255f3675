"""The worker's slots: at most `--concurrency` processors at once, never two attempts of one
job. A slot is taken at the claim and freed when the job's task is done and its processor has
really returned: a sync processor that overran its timeout or was cancelled still runs in its
thread, and keeps the slot until it returns."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from worker.running import JobRun


class Slots:
    def __init__(self, concurrency: int, on_free: Callable[[], None]) -> None:
        self.concurrency = concurrency
        self._on_free = on_free
        self._taken: dict[str, JobRun] = {}  # lease member -> the run in that slot

    @property
    def free(self) -> int:
        return self.concurrency - len(self._taken)

    def take(self, run: JobRun, task: asyncio.Task[None]) -> None:
        self._taken[run.claimed.lease.member] = run
        task.add_done_callback(functools.partial(self._free_once_stopped, run))

    def still_running(self, job_id: str) -> asyncio.Future[str] | None:
        """The processor of an earlier attempt of this job, if it has not returned yet: the
        new attempt waits for it (within its timeout), never running beside it."""
        for run in self._taken.values():
            if run.job_id == job_id and run.processor_running:
                return run.stopped
        return None

    def _free_once_stopped(self, run: JobRun, _: asyncio.Task[None]) -> None:
        if run.stopped is not None and run.processor_running:
            run.log_slot_held()
            run.stopped.add_done_callback(functools.partial(self._late_end, run))
            return
        self._free(run)

    def _late_end(self, run: JobRun, ended: asyncio.Future[str]) -> None:
        run.log_late_result_dropped(ended.result())
        self._free(run)

    def _free(self, run: JobRun) -> None:
        self._taken.pop(run.claimed.lease.member, None)
        self._on_free()
