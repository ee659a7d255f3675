"""One claimed job, from the processor call to the accepted (or refused) report of its outcome.

The outcome is reported with the job's fencing token (`worker.reports`): completed, a retry
after backoff, or a final failure. A refused report (the lease was lost) is logged and
dropped; one refused because the owner cancelled the job meanwhile ends it cancelled. When
Upstash cannot be reached the report is retried with backoff while the lease may still be
valid; the scripts recognise a repeat of an applied call, so a lost reply cannot write twice.

Stopping a run (`cancel`): its owner cancelled the job, or its lease is gone (the beat could
not renew it, a progress write was refused). The processor is stopped as far as its isolation
allows (an async one is cancelled, a child process killed, a thread told: `job.cancelled`,
`job.progress()` raises `JobCancelled`); once it has really stopped, `finish_cancelled` ends
the job cancelled if its owner asked (else nothing is written). A sync processor still running
at the lease's deadline keeps its slot (see `worker.slots`) and the expired cancel lease ends
the job instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from upstash_redis.asyncio import Redis

from shared import clock
from shared.config.settings import Settings
from shared.errors import RedisUnavailable
from shared.queue.backoff import Backoff
from shared.queue.claim import ClaimedJob
from shared.queue.leases import LeaseOutcome, report_progress
from shared.queue.models import JobError, Progress
from shared.store.keys import QueueKeys
from worker.completions import Completions
from worker.isolation.runner import Runner
from worker.job import Job
from worker.logs import log_event
from worker.processor import AttemptResult, Failed, Succeeded
from worker.progress import ProgressReporter
from worker.reports import retry_at_for, write_cancelled, write_outcome

REPORT_RETRY_MIN_S = 0.2
REPORT_RETRY_MAX_S = 5.0
CANCEL_REQUESTED = "cancel requested"  # the owner's cancel, heard on the events channel


@dataclass(frozen=True)
class QueueHandle:
    """What a running job needs to talk to its queue."""

    redis: Redis
    settings: Settings
    keys: QueueKeys
    worker_id: str

    @functools.cached_property
    def completions(self) -> Completions:
        """The worker's completes, sent together when they fall due together."""
        return Completions(self.redis, self.settings, self.keys)


class JobRun:
    def __init__(
        self,
        queue: QueueHandle,
        claimed: ClaimedJob,
        runner: Runner,
        backoff: Backoff,
        *,
        after: asyncio.Future[str] | None = None,
    ) -> None:
        self.claimed = claimed
        # Resolves when the processor has really returned (see `run_attempt`); None until the
        # attempt begins. `after` is the `stopped` of an earlier attempt of this job that still
        # runs: this attempt waits for it.
        self.stopped: asyncio.Future[str] | None = None
        self._after = after
        self.lease_valid_until_ms = clock.now_ms() + claimed.timeout_ms
        self._queue = queue
        self._runner = runner
        self._backoff = backoff
        self._started_ms = clock.now_ms()
        self.retry_at_ms: int | None = None  # set once a retry has been scheduled
        # Once the outcome is being reported, the report itself learns whether the lease was
        # still held (applied, or refused as stale); a beat must not cancel it half-way.
        self.reporting = False
        self.stop_reason: str | None = None  # set by `cancel`
        self._cancelled = threading.Event()  # the job's `cancelled`
        self._attempt_task: asyncio.Task[AttemptResult] | None = None

    @property
    def job_id(self) -> str:
        return self.claimed.lease.job_id

    @property
    def holds_lease(self) -> bool:
        """Whether this worker still renews the lease (and would hand it back)."""
        return self.stop_reason is None

    @property
    def processor_running(self) -> bool:
        """Still true after the attempt ended when a sync processor overran or was cancelled."""
        return self.stopped is not None and not self.stopped.done()

    def cancel(self, reason: str) -> bool:
        """Stop the processor (see the module doc). False when there is nothing to stop: the
        outcome is being reported already (the report learns what happened), or it stops."""
        if self.reporting or self.stop_reason is not None:
            return False
        self.stop_reason = reason
        self._cancelled.set()
        if self._attempt_task is not None:
            self._attempt_task.cancel()
        if reason == CANCEL_REQUESTED:
            self._log("cancel_requested")
        else:
            self._log("lease_lost", logging.WARNING, reason=reason)
        return True

    async def execute(self) -> LeaseOutcome | None:
        """Run one attempt and report it; None when the report could not be made in time."""
        if self.stop_reason is not None:  # stopped before it began
            return await self._finish_cancelled()
        reporter = ProgressReporter(asyncio.get_running_loop(), self._send_progress)
        sender = asyncio.create_task(reporter.run())
        self._attempt_task = asyncio.create_task(self._attempt(reporter))
        outcome: AttemptResult | None = None
        try:
            outcome = await self._attempt_task
        except asyncio.CancelledError:
            if self.holds_lease or _being_cancelled():  # shutdown: not an outcome
                raise
        finally:
            sender.cancel()
        if outcome is None:
            return await self._finish_cancelled()
        self.reporting = True
        return await self._report(outcome, reporter.unwritten())

    async def _attempt(self, reporter: ProgressReporter) -> AttemptResult:
        try:
            data = json.loads(self.claimed.data_json or "{}")
        except ValueError:
            error = JobError(message="the stored job data is not JSON", kind="invalid_data")
            return Failed(error, permanent=True)
        job = Job(
            id=self.job_id,
            type=self.claimed.type,
            user_id=self.claimed.user_id,
            data=data,
            attempt=self.claimed.attempt,
            max_attempts=self.claimed.max_attempts,
            timeout_ms=self.claimed.timeout_ms,
            _report=reporter.report,
            _cancel=self._cancelled,
        )
        self.stopped = asyncio.get_running_loop().create_future()
        return await self._runner.run(
            job, self._queue.settings.max_result_bytes, stopped=self.stopped, after=self._after
        )

    async def _send_progress(self, progress: Progress) -> None:
        q = self._queue
        try:
            written = await report_progress(
                q.redis, q.settings, q.keys, self.claimed.lease, progress
            )
        except RedisUnavailable as error:
            self._log("progress_not_written", logging.WARNING, error=str(error))
            return
        if not written:
            self.cancel("progress refused")
            return
        self._log("progress", logging.DEBUG, percent=progress.percent, message=progress.message)

    # -- reports -------------------------------------------------------------------------

    async def _report(
        self, outcome: AttemptResult, progress: Progress | None
    ) -> LeaseOutcome | None:
        retry_at = retry_at_for(self.claimed, self._backoff, outcome, clock.now_ms())
        reported = await self._reported(
            lambda: write_outcome(
                self._queue, self.claimed, outcome, retry_at=retry_at, progress=progress
            )
        )
        if reported is not None:
            self._log_reported(reported, outcome, retry_at)
        if reported is LeaseOutcome.RETRYING:
            self.retry_at_ms = retry_at
        return reported

    async def _finish_cancelled(self) -> LeaseOutcome | None:
        """Once the processor has really stopped: CANCELLED if the owner asked, else STALE."""
        if not await self._processor_stopped():
            return None  # its slot stays held; the expiring cancel lease ends the job
        self.reporting = True
        reported = await self._reported(lambda: write_cancelled(self._queue, self.claimed))
        if reported is LeaseOutcome.CANCELLED:
            self._log("cancelled", durationMs=clock.now_ms() - self._started_ms)
        elif reported is LeaseOutcome.STALE and self.stop_reason == CANCEL_REQUESTED:
            self._log("lease_lost", logging.WARNING, reason="cancel refused: stale token")
        return reported

    async def _processor_stopped(self) -> bool:
        """Wait for the processor to return, at most until the lease's deadline."""
        stopped = self.stopped
        if stopped is None or stopped.done():
            return True
        left_s = max(0.0, (self.lease_valid_until_ms - clock.now_ms()) / 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(stopped), left_s)
        return stopped.done()

    async def _reported(self, send: Callable[[], Awaitable[LeaseOutcome]]) -> LeaseOutcome | None:
        """`send()`, retried with backoff while Upstash is unreachable and the lease may still
        be valid; None when it could not be made in time."""
        delay_s = REPORT_RETRY_MIN_S
        while True:
            try:
                return await send()
            except RedisUnavailable as error:
                if clock.now_ms() + delay_s * 1000 > self.lease_valid_until_ms:
                    self._log("lease_lost", logging.WARNING, reason="unreported", error=str(error))
                    return None
                self._log("report_retry", logging.WARNING, error=str(error), retryInS=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, REPORT_RETRY_MAX_S)

    def _log_reported(
        self, reported: LeaseOutcome, outcome: AttemptResult, retry_at: int | None
    ) -> None:
        if reported is LeaseOutcome.STALE:
            self._log("lease_lost", logging.WARNING, reason="report refused: stale token")
            return
        fields: dict[str, Any] = {"durationMs": clock.now_ms() - self._started_ms}
        if reported is LeaseOutcome.CANCELLED:  # the owner cancelled it as it ended
            refused = "result" if isinstance(outcome, Succeeded) else "failure"
            self._log("cancelled", refused=refused, **fields)
            return
        if isinstance(outcome, Failed):
            fields |= {"errorKind": outcome.error.kind, "error": outcome.error.message}
        if reported is LeaseOutcome.RETRYING:
            fields["retryAt"] = retry_at
        level = logging.WARNING if reported is LeaseOutcome.FAILED else logging.INFO
        self._log(reported.value, level, **fields)

    # -- logs ----------------------------------------------------------------------------

    def log_claimed(self) -> None:
        self._log("claimed")

    def log_report_failed(self, error: Exception) -> None:
        self._log("job_report_failed", logging.ERROR, error=str(error))

    def log_slot_held(self) -> None:
        self._log("slot_held", logging.WARNING, reason="the processor is still running")

    def log_late_result_dropped(self, how: str) -> None:
        """The processor returned (or raised) after its attempt ended: nothing is written."""
        ran_ms = clock.now_ms() - self._started_ms
        self._log("late_result_dropped", logging.WARNING, ended=how, ranMs=ran_ms)

    def _log(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(
            event,
            level,
            workerId=self._queue.worker_id,
            jobId=self.job_id,
            type=self.claimed.type,
            attempt=self.claimed.attempt,
            maxAttempts=self.claimed.max_attempts,
            **fields,
        )


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
