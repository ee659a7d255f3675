"""The end of a graceful shutdown: hand the jobs still running back to `ready` without spending
an attempt, and remove the worker's heartbeat, in one request.

The jobs' tasks are cancelled first, so no result can be reported after the hand-back; a job
that finished (or lost its lease) in the meantime is simply not handed back: the release script
checks each fencing token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from shared import clock
from shared.errors import AppError, RedisUnavailable
from shared.queue.claim import ClaimedJob
from shared.queue.leases import HandBack, release_jobs
from worker.logs import log_event
from worker.running import QueueHandle

RELEASE_DEADLINE_S = 10.0
RELEASE_RETRY_S = 0.5


async def hand_back(
    queue: QueueHandle, claimed: Sequence[ClaimedJob], tasks: Sequence[asyncio.Task[None]]
) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
    jobs = [
        HandBack(job.lease, job.priority, job.attempt - 1, job.type, job.user_id, job.holds_slot)
        for job in claimed
    ]
    try:
        released = await _release(queue, jobs)
    except AppError as error:
        # Their leases expire and the jobs return to ready (the attempt counted).
        log_event("release_failed", logging.ERROR, workerId=queue.worker_id, error=str(error))
        return
    by_id = {job.lease.job_id: job for job in claimed}
    for job_id in released:
        log_event(
            "released",
            workerId=queue.worker_id,
            jobId=job_id,
            type=by_id[job_id].type,
            attempt=by_id[job_id].attempt,
        )


async def _release(queue: QueueHandle, jobs: list[HandBack]) -> list[str]:
    """Release and sign off, retrying while Upstash is unreachable, up to a deadline."""
    deadline = asyncio.get_running_loop().time() + RELEASE_DEADLINE_S
    while True:
        try:
            return await release_jobs(
                queue.redis,
                queue.settings,
                queue.keys,
                jobs,
                now_ms=clock.now_ms(),
                sign_off_worker_id=queue.worker_id,
            )
        except RedisUnavailable:
            if asyncio.get_running_loop().time() + RELEASE_RETRY_S > deadline:
                raise
            await asyncio.sleep(RELEASE_RETRY_S)
