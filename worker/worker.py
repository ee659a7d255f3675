"""`Worker`: claims jobs, runs them with a processor, keeps their leases alive, and stops
gracefully. Embed it in an app, or run it with `python -m worker`.

    worker = Worker(process, get_settings(), WorkerOptions(concurrency=4))
    await worker.run()          # returns after worker.stop() and a graceful shutdown

The loop claims only when a job may be ready (the event stream said so, a settle after a beat
moved jobs to ready, or the last claim filled every free slot) and beats when the schedule or a
known due time says so (settling what the beat found due); in between it sleeps, so an idle
worker costs a few commands every few minutes. A wake-up that names one job is taken by name in
one request; among several idle workers, only the one whose turn comes first claims
(`worker.wakeups`).

A slot is taken from the claim until the processor has really returned: a sync processor that
overran its timeout or lost its lease keeps running in its thread (no thread can be killed), so
its slot stays taken and a new attempt of the same job waits for it; its late result is dropped
and logged (`late_result_dropped`). With `isolation=process` each slot runs its jobs in a child
process instead, killed and replaced on timeout or cancel (`worker.isolation`).

A job its owner cancels while it runs here is stopped as soon as the event stream says so
(`"<id> cancel"`), or at the next beat, which finds its lease gone (`worker.running`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from shared import clock
from shared.config.settings import Settings
from shared.errors import BadRedisReply, RedisTimeout, RedisUnavailable, ServerMisconfigured
from shared.queue.beat import BeatRequest, BeatResult, HeldLease, beat, settle
from shared.queue.claim import MAX_CLAIM_BATCH, ClaimedJob, lease_jobs, start_jobs, take_job
from shared.queue.leases import LeaseOutcome, check_worker_id
from shared.queue.routing import ConcurrencyLimits
from shared.queue.stats import WORKER_STALE_AFTER_MS
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from shared.usage.flush import flush_usage
from worker.events import (
    CancelRequested,
    Drained,
    Event,
    EventStream,
    Missed,
    Subscribed,
    Taken,
)
from worker.isolation.runner import make_runner
from worker.logs import log_event
from worker.options import WorkerOptions, default_worker_id
from worker.processor import Processor
from worker.running import JobRun, QueueHandle
from worker.runs import Runs
from worker.schedule import Housekeeping, beat_interval_s, housekeeping, merge_due_ms, next_due_ms
from worker.shutdown import hand_back
from worker.slots import Slots
from worker.wakeups import ClaimAll, TakeByName, Wakeups
from worker.webhooks import SenderOptions, WebhookSender

ENDINGS = (LeaseOutcome.COMPLETED, LeaseOutcome.FAILED, LeaseOutcome.CANCELLED)

REDIS_RETRY_MIN_S = 0.5
REDIS_RETRY_MAX_S = 30.0


class Worker:
    def __init__(
        self, processor: Processor | str, settings: Settings, options: WorkerOptions
    ) -> None:
        """`processor`: the callable, or its `module:function` (with process isolation only
        the children import it). ProcessorLoadError if it cannot be loaded."""
        self.id = options.worker_id or default_worker_id()
        check_worker_id(self.id)
        self.keys = QueueKeys(options.queue_name or settings.queue_name)
        self._settings = settings
        self._options = options
        self._wake = asyncio.Event()
        self._slots = Slots(options.concurrency, on_free=self._wake.set)
        self._runner = make_runner(processor, options.isolation, options.concurrency, self.id)
        self._runs = Runs(self._runner, options.backoff, self._slots, on_end=self._run_ended)
        self._stopping = False
        self._hurry = False
        limited = settings.concurrency_limits != ConcurrencyLimits()
        self._wakeups = Wakeups(self.id, by_name=not limited)  # limits: only a claim counts slots
        self._next_beat_ms = 0
        self._due_ms: int | None = None
        self._last_trim_ms = self._last_prune_ms = 0
        self._finished_since_trim = False
        self._redis_failures = 0
        self._reached = False  # Upstash has answered a request of this worker
        self._webhooks: WebhookSender | None = None  # made in run(), on the running loop

    def stop(self) -> None:
        """Stop claiming and shut down gracefully; a second call skips the grace period."""
        self._hurry = self._stopping
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Until `stop()`. Raises what retrying cannot fix: `ServerMisconfigured` when Upstash
        refuses the token (at any time), and, before Upstash has answered once, any failure
        but a timeout (nothing listening at the URL, or not Upstash there); with process
        isolation, `ProcessorLoadError` when the children cannot load the processor."""
        queue = QueueHandle(get_redis(self._settings), self._settings, self.keys, self.id)
        self._log(
            "worker_started",
            concurrency=self._options.concurrency,
            queue=self.keys.queue_name,
            isolation=self._options.isolation,
            types=str(self._options.types),
        )
        stream: asyncio.Task[None] | None = None
        webhooks = None
        if self._settings.webhook_secret:  # callbacks are refused at enqueue without one
            options = SenderOptions(subscribe=self._options.subscribe)
            self._webhooks = WebhookSender(self._settings, queue.redis, self.keys, options)
            webhooks = asyncio.create_task(self._webhooks.run())
        refused = False
        try:
            await self._runner.start()
            while not self._stopping:
                await self._guarded(self._step(queue))
                if stream is None and self._reached:  # subscribe once Upstash has answered
                    stream = self._start_event_stream()
                await self._sleep(self._idle_s())
            await self._drain(queue)
        except ServerMisconfigured:
            refused = True
            raise
        finally:
            for task in (stream, webhooks):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if self._reached and not refused:
                claimed = [run.claimed for run in self._runs.holding()]
                await hand_back(queue, claimed, self._runs.cancel_all())
            else:  # nothing can be handed back: the leases expire
                await asyncio.gather(*self._runs.cancel_all(), return_exceptions=True)
            await self._runner.close()
            await flush_usage(self._settings)  # the meter's last counts (it never raises)
        self._log("worker_stopped")

    # -- the loop ------------------------------------------------------------------------

    async def _step(self, queue: QueueHandle) -> None:
        now_ms = clock.now_ms()
        if now_ms >= self._next_beat_ms or (self._due_ms is not None and now_ms >= self._due_ms):
            await self._beat(queue, now_ms)
        if self._wants_to_claim():
            await self._claim(queue)

    def _wants_to_claim(self) -> bool:
        return self._slots.free > 0 and not self._stopping

    def _idle_s(self) -> float:
        wake_ms = min(self._next_beat_ms, self._due_ms or self._next_beat_ms)
        claim_ms = self._wakeups.next_at_ms()
        if claim_ms is not None and self._wants_to_claim():
            wake_ms = min(wake_ms, claim_ms)
        return max(0.0, (wake_ms - clock.now_ms()) / 1000)

    async def _sleep(self, timeout_s: float) -> None:
        if timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._wake.wait()
        self._wake.clear()

    async def _back_off(self, delay_s: float) -> None:
        """Sleep the whole delay: a job ending or an event must not cut a backoff short (each
        early retry would double the next delay, up to the maximum, while Upstash was already
        back); only stopping does."""
        deadline = asyncio.get_running_loop().time() + delay_s
        while not self._stopping and (left_s := deadline - asyncio.get_running_loop().time()) > 0:
            await self._sleep(left_s)

    async def _guarded(self, operation: Awaitable[None]) -> None:
        """Run one step; when Upstash cannot be reached, log and back off instead of dying.
        Until it has answered once, only a timeout is retried: a refused connection or a reply
        that is not Upstash's means the URL is wrong, and retrying cannot fix that."""
        try:
            await operation
        except (RedisUnavailable, BadRedisReply) as error:
            if not self._reached and not isinstance(error, RedisTimeout):
                raise
            self._redis_failures += 1
            delay_s = min(REDIS_RETRY_MIN_S * 2 ** (self._redis_failures - 1), REDIS_RETRY_MAX_S)
            self._log("redis_error", logging.WARNING, error=str(error), retryInS=delay_s)
            await self._back_off(delay_s)
        else:
            self._reached = True
            self._redis_failures = 0

    # -- beats and claims ----------------------------------------------------------------

    async def _beat(self, queue: QueueHandle, now_ms: int) -> None:
        chores = housekeeping(
            now_ms,
            last_trim_ms=self._last_trim_ms,
            last_prune_ms=self._last_prune_ms,
            finished_since_trim=self._finished_since_trim,
            retention_ms=self._settings.job_retention_ms,
            worker_stale_after_ms=WORKER_STALE_AFTER_MS,
        )
        runs = self._runs.holding()
        request, due_before_ms = self._request(now_ms, chores, runs), self._due_ms
        result = await beat(queue.redis, queue.settings, queue.keys, request)
        if chores.trim_done_before_ms:
            self._last_trim_ms, self._finished_since_trim = now_ms, False
        if chores.prune_workers_before_ms:
            self._last_prune_ms = now_ms
        for member in result.lost:
            self._runs.abandon(member)
        for run in runs:
            if run.holds_lease:
                run.lease_valid_until_ms = now_ms + run.claimed.timeout_ms
        # Until the settle succeeds, what was due stays due: the next step beats again.
        due_ms = now_ms if result.has_due else result.next_due_ms
        self._due_ms = merge_due_ms(next_due_ms(due_ms, now_ms), self._due_ms, due_before_ms)
        self._schedule_next_beat(now_ms)
        await self._settle(queue, result, now_ms)

    def _request(self, now_ms: int, chores: Housekeeping, runs: list[JobRun]) -> BeatRequest:
        return BeatRequest(
            worker_id=self.id,
            held=[HeldLease(run.claimed.lease.member, run.claimed.timeout_ms) for run in runs],
            concurrency=self._options.concurrency,
            now_ms=now_ms,
            trim_done_before_ms=chores.trim_done_before_ms,
            prune_workers_before_ms=chores.prune_workers_before_ms,
        )

    async def _settle(self, queue: QueueHandle, result: BeatResult, now_ms: int) -> None:
        if not result.has_due:
            return
        due_before_ms = self._due_ms
        settled = await settle(
            queue.redis,
            queue.settings,
            queue.keys,
            expired=result.expired,
            due=result.due,
            now_ms=now_ms,
        )
        reported_ms = next_due_ms(result.next_due_ms, now_ms)
        self._due_ms = merge_due_ms(reported_ms, self._due_ms, due_before_ms)
        if settled.became_ready:
            self._wakeups.claim_all(now_ms)

    def _schedule_next_beat(self, now_ms: int) -> None:
        timeouts = [run.claimed.timeout_ms for run in self._runs.holding()]
        self._next_beat_ms = now_ms + round(
            beat_interval_s(timeouts, self._options.idle_beat_s) * 1000
        )

    async def _claim(self, queue: QueueHandle) -> None:
        """The claim the wake-ups call for: a named job taken in one request, or every free
        slot: lease, then start (two requests; if the start cannot be made, the provisional
        leases expire and the jobs return to `ready` without spending an attempt)."""
        now_ms = clock.now_ms()
        claim = self._wakeups.next_claim(now_ms)
        if claim is None:
            return
        announce = self._wakeups.others_listen(now_ms)
        r, s, k = queue.redis, queue.settings, queue.keys
        if isinstance(claim, TakeByName):
            job = await take_job(
                r, s, k, claim.job_id, now_ms=now_ms, worker_id=self.id, announce=announce
            )
            self._wakeups.took(claim.job_id, found=job is not None, now_ms=clock.now_ms())
            self._started(queue, [job] if job else [])
            return
        await self._claim_all(queue, claim, announce)

    async def _claim_all(self, queue: QueueHandle, claim: ClaimAll, announce: bool) -> None:
        wanted = min(self._slots.free, MAX_CLAIM_BATCH)
        r, s, k = queue.redis, queue.settings, queue.keys
        leases = await lease_jobs(
            r,
            s,
            k,
            count=wanted,
            now_ms=clock.now_ms(),
            worker_id=self.id,
            types=self._options.types,
            announce=announce,
        )
        self._wakeups.claimed_all(filled=len(leases) == wanted, claim=claim)
        if leases:
            self._started(queue, await start_jobs(r, s, k, leases, now_ms=clock.now_ms()))

    def _started(self, queue: QueueHandle, jobs: list[ClaimedJob]) -> None:
        self._runs.start(queue, jobs)
        if jobs:
            busy_beat_ms = round(beat_interval_s([job.timeout_ms for job in jobs]) * 1000)
            self._next_beat_ms = min(self._next_beat_ms, clock.now_ms() + busy_beat_ms)

    def _run_ended(self, run: JobRun, outcome: LeaseOutcome | None) -> None:
        if outcome in (LeaseOutcome.COMPLETED, LeaseOutcome.FAILED):
            self._finished_since_trim = True
        if self._webhooks and run.claimed.has_callback and outcome in ENDINGS:
            self._webhooks.notify(run.job_id)  # this worker's ending: its own sender delivers
        if run.retry_at_ms is not None:  # this worker promotes its own retry when due
            self._due_ms = min(self._due_ms or run.retry_at_ms, run.retry_at_ms)
        self._wake.set()

    # -- wake-ups --------------------------------------------------------------------------

    def _start_event_stream(self) -> asyncio.Task[None] | None:
        if not self._options.subscribe:
            return None
        stream = EventStream(self._settings, self.keys.events_channel, self._on_event)
        return asyncio.create_task(stream.run())

    def _on_event(self, event: Event) -> None:
        now_ms = clock.now_ms()
        if isinstance(event, CancelRequested):
            self._runs.cancel_job(event.job_id)
            return
        if isinstance(event, Taken):
            self._wakeups.taken(event.job_id, event.worker_id, now_ms)
        elif isinstance(event, Missed):
            self._wakeups.missed(event.worker_id, now_ms)
        elif isinstance(event, Drained):
            self._wakeups.drained(event.worker_id, now_ms)
        elif isinstance(event, Subscribed):
            self._log("subscribed", logging.DEBUG, channel=self.keys.events_channel)
            self._wakeups.claim_all(now_ms)  # anything published while unsubscribed was missed
        elif event.job_type is not None and not self._options.types.matches(event.job_type):
            return  # jobs this worker does not run: a claim would find none of its own
        elif event.ready_at_ms <= now_ms:
            self._wakeups.job_ready(event.job_id, event.count, now_ms)
        else:
            self._due_ms = min(self._due_ms or event.ready_at_ms, event.ready_at_ms)
        self._wake.set()

    # -- shutdown --------------------------------------------------------------------------

    async def _drain(self, queue: QueueHandle) -> None:
        """Let running jobs finish within the grace period, renewing their leases meanwhile."""
        self._log(
            "worker_stopping", running=len(self._runs), gracePeriodS=self._options.grace_period_s
        )
        deadline = asyncio.get_running_loop().time() + self._options.grace_period_s
        while self._runs and not self._hurry:
            left_s = deadline - asyncio.get_running_loop().time()
            if left_s <= 0:
                return
            if clock.now_ms() >= self._next_beat_ms:
                await self._guarded(self._beat(queue, clock.now_ms()))
            await self._sleep(min(left_s, max(0.0, (self._next_beat_ms - clock.now_ms()) / 1000)))

    def _log(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(event, level, workerId=self.id, **fields)
