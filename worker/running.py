"""One claimed job, from the processor call to the accepted (or refused) report of its outcome.

The outcome is reported with the job's fencing token: completed, a retry after backoff, or a
final failure. A refused report (the lease was lost) is logged and dropped. When Upstash cannot
be reached the report is retried with backoff while the lease may still be valid; the scripts
recognise a repeat of an applied call, so a lost reply cannot write twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from upstash_redis.asyncio import Redis

from shared import clock
from shared.config.settings import Settings
from shared.errors import RedisUnavailable
from shared.queue.backoff import Backoff, retry_at_ms
from shared.queue.claim import ClaimedJob
from shared.queue.leases import LeaseOutcome, complete_job, fail_job, report_progress
from shared.queue.models import JobError, Progress
from shared.store.keys import QueueKeys
from worker.job import Job
from worker.logs import log_event
from worker.processor import AttemptResult, Failed, Processor, Succeeded, run_attempt
from worker.progress import ProgressReporter

REPORT_RETRY_MIN_S = 0.2
REPORT_RETRY_MAX_S = 5.0


@dataclass(frozen=True)
class QueueHandle:
    """What a running job needs to talk to its queue."""

    redis: Redis
    settings: Settings
    keys: QueueKeys
    worker_id: str


class JobRun:
    def __init__(
        self,
        queue: QueueHandle,
        claimed: ClaimedJob,
        processor: Processor,
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
        self._processor = processor
        self._backoff = backoff
        self._started_ms = clock.now_ms()
        self.retry_at_ms: int | None = None  # set once a retry has been scheduled
        # Once the outcome is being reported, the report itself learns whether the lease was
        # still held (applied, or refused as stale); a beat must not cancel it half-way.
        self.reporting = False

    @property
    def job_id(self) -> str:
        return self.claimed.lease.job_id

    @property
    def processor_running(self) -> bool:
        """Still true after the attempt ended when a sync processor overran or was cancelled."""
        return self.stopped is not None and not self.stopped.done()

    async def execute(self) -> LeaseOutcome | None:
        """Run one attempt and report it; None when the report could not be made in time."""
        reporter = ProgressReporter(asyncio.get_running_loop(), self._send_progress)
        sender = asyncio.create_task(reporter.run())
        try:
            outcome = await self._attempt(reporter)
        finally:
            sender.cancel()
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
        )
        self.stopped = asyncio.get_running_loop().create_future()
        return await run_attempt(
            self._processor,
            job,
            self._queue.settings.max_result_bytes,
            stopped=self.stopped,
            after=self._after,
        )

    async def _send_progress(self, progress: Progress) -> None:
        q = self._queue
        try:
            await report_progress(q.redis, q.settings, q.keys, self.claimed.lease, progress)
        except RedisUnavailable as error:
            self._log("progress_not_written", logging.WARNING, error=str(error))
            return
        self._log("progress", logging.DEBUG, percent=progress.percent, message=progress.message)

    async def _report(
        self, outcome: AttemptResult, progress: Progress | None
    ) -> LeaseOutcome | None:
        retry_at = self._retry_at_ms(outcome, clock.now_ms())
        delay_s = REPORT_RETRY_MIN_S
        while True:
            try:
                reported = await self._send_outcome(outcome, retry_at, progress)
            except RedisUnavailable as error:
                if clock.now_ms() + delay_s * 1000 > self.lease_valid_until_ms:
                    self._log("lease_lost", logging.WARNING, reason="unreported", error=str(error))
                    return None
                self._log("report_retry", logging.WARNING, error=str(error), retryInS=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, REPORT_RETRY_MAX_S)
                continue
            self._log_reported(reported, outcome, retry_at)
            if reported is LeaseOutcome.RETRYING:
                self.retry_at_ms = retry_at
            return reported

    async def _send_outcome(
        self, outcome: AttemptResult, retry_at: int | None, progress: Progress | None
    ) -> LeaseOutcome:
        q, lease, now_ms = self._queue, self.claimed.lease, clock.now_ms()
        if isinstance(outcome, Succeeded):
            return await complete_job(
                q.redis,
                q.settings,
                q.keys,
                lease,
                outcome.result_json,
                now_ms=now_ms,
                progress=progress,
            )
        return await fail_job(
            q.redis,
            q.settings,
            q.keys,
            lease,
            outcome.error,
            retry_at_ms=retry_at,
            now_ms=now_ms,
            progress=progress,
        )

    def _retry_at_ms(self, outcome: AttemptResult, now_ms: int) -> int | None:
        if isinstance(outcome, Succeeded):
            return None
        if outcome.permanent or self.claimed.attempt >= self.claimed.max_attempts:
            return None
        return retry_at_ms(self._backoff, self.claimed.attempt, now_ms)

    def _log_reported(
        self, reported: LeaseOutcome, outcome: AttemptResult, retry_at: int | None
    ) -> None:
        if reported is LeaseOutcome.STALE:
            self._log("lease_lost", logging.WARNING, reason="report refused: stale token")
            return
        fields: dict[str, Any] = {"durationMs": clock.now_ms() - self._started_ms}
        if isinstance(outcome, Failed):
            fields |= {"errorKind": outcome.error.kind, "error": outcome.error.message}
        if reported is LeaseOutcome.RETRYING:
            fields["retryAt"] = retry_at
        level = logging.WARNING if reported is LeaseOutcome.FAILED else logging.INFO
        self._log(reported.value, level, **fields)

    def log_claimed(self) -> None:
        self._log("claimed")

    def log_lease_lost(self, reason: str) -> None:
        self._log("lease_lost", logging.WARNING, reason=reason)

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
