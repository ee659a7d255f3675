"""`--isolation process`: each slot has one long-lived child process that imports the processor
once (a GPU model loads once per slot) and runs the slot's jobs one after another.

A child is killed (SIGTERM to its process group, SIGKILL after `TERM_GRACE_S`) and replaced
when its job times out or is cancelled (the lease lost, the owner's cancel, shutdown); one that
dies during a job fails that attempt like an exception (`kind: "crashed"`, retried with
backoff), and is replaced too. The attempt ends only once the old child is gone, so a slot
never runs two processors. The replacement starts at once and loads the processor while the
slot waits for its next job; the job's timeout counts from when the child is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from shared.queue.models import JobError, Progress
from worker.isolation.handle import ChildDied, ChildHandle
from worker.isolation.protocol import RunJob
from worker.job import Job, JobCancelled
from worker.logs import log_event
from worker.processor import AttemptResult, Failed, ProcessorLoadError, note_end, timed_out

TERM_GRACE_S = 0.5  # a processor gets this long to exit on SIGTERM before SIGKILL
START_TIMEOUT_S = 300.0  # to import the processor (and load what it loads at import)
STOP_GRACE_S = 2.0  # at shutdown, for an idle child to exit once its pipe closes


class ProcessRunner:
    def __init__(self, spec: str, size: int, worker_id: str) -> None:
        self._spec = spec
        self._size = size
        self._worker_id = worker_id
        self._idle: asyncio.Queue[ChildHandle] = asyncio.Queue()
        self._children: set[ChildHandle] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._closing = False
        self._started = 0

    async def start(self) -> None:
        """Start every slot's child; ProcessorLoadError if one cannot load the processor."""
        children = [self._spawn() for _ in range(self._size)]
        async with asyncio.timeout(START_TIMEOUT_S):
            await asyncio.gather(*(child.ready() for child in children))
        for child in children:
            self._log("child_ready", pid=child.pid)

    async def run(
        self,
        job: Job,
        max_result_bytes: int,
        *,
        stopped: asyncio.Future[str] | None = None,
        after: asyncio.Future[str] | None = None,
    ) -> AttemptResult:
        """One attempt in a free slot's child, under the job's timeout (see the module doc)."""
        child = await self._idle.get()
        how = "not called"
        try:
            loaded = await self._loaded(child)
            if loaded is not None:
                return loaded
            deadline = asyncio.timeout(job.timeout_ms / 1000)
            try:
                async with deadline:
                    if after is not None and not after.done():
                        await asyncio.shield(after)
                    how = "killed"
                    outcome = await child.run(RunJob.of(job, max_result_bytes), _forward(job))
            except TimeoutError:
                if deadline.expired():
                    return timed_out(job, still_waiting=how == "not called")
                raise
            except ChildDied as died:
                self._log(
                    "child_died", logging.WARNING, pid=child.pid, jobId=job.id, error=str(died)
                )
                return Failed(JobError(message=str(died), kind="crashed"), permanent=False)
            how = "returned" if not isinstance(outcome, Failed) else f"raised {outcome.error.kind}"
            return outcome
        finally:
            await self._release(child, job, stopped, how)

    async def close(self) -> None:
        """Stop every child (running jobs were cancelled first, so their children are gone)."""
        self._closing = True
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await asyncio.gather(*(child.stop(STOP_GRACE_S) for child in list(self._children)))
        self._children.clear()

    async def _loaded(self, child: ChildHandle) -> Failed | None:
        """None once the child is ready; a failed attempt if it could not load the processor
        (it is replaced, and the job retried with backoff)."""
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await child.ready()
        except (ProcessorLoadError, TimeoutError) as error:
            child.clean = False
            message = f"the processor could not be loaded in a new process: {error}"
            return Failed(JobError(message=message, kind="processor_not_loaded"), permanent=False)
        return None

    async def _release(
        self, child: ChildHandle, job: Job, stopped: asyncio.Future[str] | None, how: str
    ) -> None:
        """Give the child back to the slots, or kill and replace it; then note the end."""
        if child.clean and not child.exited:
            self._idle.put_nowait(child)
            note_end(stopped, how)
            return
        retiring = asyncio.create_task(self._retire(child, job.id))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)
        retiring.add_done_callback(lambda _: note_end(stopped, how))
        await asyncio.shield(retiring)  # a second cancel must not stop the kill half-way

    async def _retire(self, child: ChildHandle, job_id: str) -> None:
        was_running = not child.exited
        await child.kill(TERM_GRACE_S)
        self._children.discard(child)
        if was_running:
            self._log("child_killed", pid=child.pid, jobId=job_id, exit=child.describe_exit())
        if not self._closing:
            self._spawn()

    def _spawn(self) -> ChildHandle:
        """A new child, idle at once: the next job waits until it is ready."""
        self._started += 1
        child = ChildHandle(self._spec, name=f"worker-child-{self._started}")
        self._children.add(child)
        self._idle.put_nowait(child)
        self._log("child_started", pid=child.pid)
        return child

    def _log(self, event: str, level: int = logging.INFO, **fields: object) -> None:
        log_event(event, level, workerId=self._worker_id, **fields)


def _forward(job: Job) -> Callable[[Progress], None]:
    def report(progress: Progress) -> None:
        with contextlib.suppress(JobCancelled):  # the child is being stopped
            job.progress(progress.percent, progress.message)

    return report
