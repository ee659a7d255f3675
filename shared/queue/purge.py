"""Purging finished jobs before their retention ends (`POST /api/jobs/purge`, `python -m cli
purge`): the completed, failed or cancelled jobs that finished more than `olderThanS` ago are
deleted, at most `limit` (default 500) per call, the oldest first (`purge_jobs.lua`).

A purged job is gone: `status` answers 404 for it, and its idempotency key (whose window is the
job's life plus `JOB_RETENTION_S`) creates a new job if reused.

Cost, per call: **two** requests (the job keys come from the index, which the script may not
read for itself, SPEC 6). 1. ZRANGEBYSCORE on done:<status>, billed 1. 2. The script, billed
1 + 1 HMGET per listed job + DEL + 2 ZREM + ZCOUNT. A full batch of 500 bills 506. Call again
while `remaining` is above 0.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import ApiModel
from shared.store.client import call_redis
from shared.store.keys import QueueKeys
from shared.store.replies import as_int_list, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script

DEFAULT_BATCH = 500
MAX_BATCH = 1000
MAX_OLDER_THAN_S = 10 * 365 * 86_400
FinalStatus = Literal["completed", "failed", "cancelled"]


class PurgeRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    status: FinalStatus
    older_than_s: Annotated[int, Field(ge=0, le=MAX_OLDER_THAN_S)]
    limit: Annotated[int, Field(ge=1, le=MAX_BATCH)] = DEFAULT_BATCH


class PurgeResult(ApiModel):
    purged: int = Field(description="jobs deleted")
    remaining: int = Field(description="jobs of that status and age still to purge (call again)")


def cutoff_ms(now_ms: int, older_than_s: int) -> int:
    """Jobs that finished before this moment are old enough."""
    return now_ms - older_than_s * 1000


async def purge_jobs(
    redis: Redis, settings: Settings, status: FinalStatus, cutoff: int, limit: int
) -> PurgeResult:
    keys = QueueKeys(settings.queue_name)
    index = keys.done(status)
    reply = await call_redis(
        settings,
        lambda: redis.zrangebyscore(index, "-inf", f"({cutoff}", offset=0, count=limit),
        safe_to_repeat=True,
    )
    ids = as_str_list(reply, "ZRANGEBYSCORE")
    if not ids:
        return PurgeResult(purged=0, remaining=0)
    script_keys = [index, keys.webhooks, *(keys.job(job_id) for job_id in ids)]
    args: list[ScriptArg] = [status, cutoff, *ids]
    counts = as_int_list(
        await run_script(redis, settings, load_script("queue/purge_jobs"), script_keys, args),
        "purge_jobs",
    )
    if len(counts) != 3:
        raise BadRedisReply(f"purge_jobs replied {counts!r:.200}")
    return PurgeResult(purged=counts[0], remaining=counts[2])


async def count_purgeable(
    redis: Redis, settings: Settings, status: FinalStatus, cutoff: int
) -> int:
    """How many jobs of `status` finished before `cutoff` (one ZCOUNT)."""
    index = QueueKeys(settings.queue_name).done(status)
    reply = await call_redis(
        settings, lambda: redis.zcount(index, "-inf", f"({cutoff}"), safe_to_repeat=True
    )
    if not isinstance(reply, int):
        raise BadRedisReply(f"ZCOUNT replied {reply!r:.60}")
    return reply
