"""Writing how a run ended, each one script carrying the run's fencing token: the outcome of
its attempt (completed, a retry after backoff, a final failure), or, after the worker stopped
its processor, the cancel its owner asked for. Each says whether it was applied (`LeaseOutcome`)
and may be repeated after a lost reply."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import clock
from shared.queue.backoff import Backoff, retry_at_ms
from shared.queue.claim import ClaimedJob
from shared.queue.leases import Completion, LeaseOutcome, fail_job, finish_cancelled
from shared.queue.models import Progress
from worker.processor import AttemptResult, Succeeded

if TYPE_CHECKING:
    from worker.running import QueueHandle


async def write_outcome(
    queue: QueueHandle,
    claimed: ClaimedJob,
    outcome: AttemptResult,
    *,
    retry_at: int | None,
    progress: Progress | None,
) -> LeaseOutcome:
    """Complete, or fail (a retry at `retry_at`, or for good when it is None)."""
    q, lease, now_ms = queue, claimed.lease, clock.now_ms()
    if isinstance(outcome, Succeeded):
        completion = Completion(
            lease, outcome.result_json, progress, claimed.has_callback, claimed.holds_slot
        )
        return await q.completions.complete(completion)  # with any others due at once
    return await fail_job(
        q.redis,
        q.settings,
        q.keys,
        lease,
        outcome.error,
        retry_at_ms=retry_at,
        now_ms=now_ms,
        progress=progress,
        callback=claimed.has_callback,
        slot=claimed.holds_slot,
    )


async def write_cancelled(queue: QueueHandle, claimed: ClaimedJob) -> LeaseOutcome:
    """CANCELLED if the owner asked for it, else STALE (the lease was lost otherwise)."""
    return await finish_cancelled(
        queue.redis,
        queue.settings,
        queue.keys,
        claimed.lease,
        now_ms=clock.now_ms(),
        callback=claimed.has_callback,
        slot=claimed.holds_slot,
    )


def retry_at_for(
    claimed: ClaimedJob, backoff: Backoff, outcome: AttemptResult, now_ms: int
) -> int | None:
    """When a failed attempt is retried; None for a success, a permanent or a last failure."""
    if isinstance(outcome, Succeeded):
        return None
    if outcome.permanent or claimed.attempt >= claimed.max_attempts:
        return None
    return retry_at_ms(backoff, claimed.attempt, now_ms)
