"""Retrying failed or cancelled jobs (`POST /api/jobs/retry`, `python -m cli retry`): each goes
back to `pending` as if new, with its attempts reset, and runs again (`retry_jobs.lua`).

Its `error` is removed with the rest of its last run (result, progress, start and finish
times): a pending job that still showed an error would read as failed. The failure itself is
kept where the job's history is kept, not in the fields that describe its current run.

Named ids (`{"ids": [...]}`, at most 100): **one** request, billed 1 + 5 per retried job
(HMGET, HSET, HDEL, PERSIST, PUBLISH) + 1 per other named id (HMGET) + 1 ZREM per status the
retried jobs leave (at most 2) + 2 (ZADD ready, PUBLISH): 15 for a failed and a cancelled job.
By status (`{"status": "failed"}`): the ids are read first, the oldest finished first, at most
`limit` (default 100) per call: **two** requests (ZRANGE, billed 1; then the same script, +1
ZCARD for `remaining`): 16 for two failed jobs, 506 for a full batch of 100. The script may
only touch the job keys it is given, so it cannot read the index for itself (SPEC 6). Call
again while `remaining` is above 0.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator
from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.job_ids import is_job_id
from shared.queue.models import ApiModel, JobStatus
from shared.store.client import call_redis
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from shared.store.replies import as_int, as_list, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script

MAX_IDS = 100
DEFAULT_BATCH = 100
MAX_BATCH = 1000
RetryableStatus = Literal["failed", "cancelled"]


def _job_id(value: str) -> str:
    if not is_job_id(value):
        raise ValueError("is not a job id (26 characters of Crockford base32)")
    return value


JobId = Annotated[
    str, AfterValidator(_job_id), Field(description="a job id: 26 characters of Crockford base32")
]


class RetryRequest(ApiModel):
    """Either `ids` (the jobs to retry) or `status` (the oldest `limit` jobs of it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ids: Annotated[list[JobId] | None, Field(min_length=1, max_length=MAX_IDS)] = None
    status: RetryableStatus | None = None
    limit: Annotated[int | None, Field(ge=1, le=MAX_BATCH)] = None

    @model_validator(mode="after")
    def _ids_or_status(self) -> Self:
        if (self.ids is None) == (self.status is None):
            raise ValueError("send either ids (a list of job ids) or status, not both")
        if self.ids is not None and self.limit is not None:
            raise ValueError("limit applies to a retry by status only")
        return self


class SkippedJob(ApiModel):
    id: str
    status: JobStatus | None = Field(description="null when there is no such job")


class RetryResult(ApiModel):
    retried: int = Field(description="how many jobs went back to pending")
    ids: list[str] = Field(description="the jobs retried")
    skipped: list[SkippedJob] = Field(description="jobs named or read that were not retried")
    remaining: int = Field(
        description="by status: the jobs of that status still to retry (call again); by ids: 0"
    )


async def retry_jobs(
    redis: Redis, settings: Settings, ids: list[str], now_ms: int, *, mode: str = ""
) -> RetryResult:
    """Retry the failed or cancelled jobs among `ids` (with `mode`: those of that status)."""
    keys = QueueKeys(settings.queue_name)
    unique = list(dict.fromkeys(ids))
    script_keys = [
        keys.ready,
        keys.done(JobStatus.FAILED),
        keys.done(JobStatus.CANCELLED),
        keys.lanes,
        *(keys.job(job_id) for job_id in unique),
    ]
    args: list[ScriptArg] = [
        now_ms,
        keys.events_channel,
        keys.job_channel(""),
        mode,
        SCORE_PRIORITY_STEP,
        *unique,
    ]
    reply = await run_script(redis, settings, load_script("queue/retry_jobs"), script_keys, args)
    match as_list(reply, "retry_jobs"):
        case [list() as retried, list() as skipped, remaining]:
            return _result(
                as_str_list(retried, "retried"), as_str_list(skipped, "skipped"), remaining
            )
    raise BadRedisReply(f"retry_jobs replied {reply!r:.200}")


async def retry_by_status(
    redis: Redis, settings: Settings, status: RetryableStatus, now_ms: int, limit: int
) -> RetryResult:
    """Retry the oldest `limit` jobs of `status` (finished first, retried first)."""
    index = QueueKeys(settings.queue_name).done(status)
    reply = await call_redis(
        settings, lambda: redis.zrange(index, 0, limit - 1), safe_to_repeat=True
    )
    ids = as_str_list(reply, "ZRANGE")
    if not ids:
        return RetryResult(retried=0, ids=[], skipped=[], remaining=0)
    return await retry_jobs(redis, settings, ids, now_ms, mode=status)


def _result(retried: list[str], skipped: list[str], remaining: object) -> RetryResult:
    pairs = zip(skipped[::2], skipped[1::2], strict=True)
    return RetryResult(
        retried=len(retried),
        ids=retried,
        skipped=[SkippedJob(id=job_id, status=_status(status)) for job_id, status in pairs],
        remaining=as_int(remaining, "retry_jobs remaining"),
    )


def _status(text: str) -> JobStatus | None:
    if not text:
        return None
    try:
        return JobStatus(text)
    except ValueError:
        raise BadRedisReply(f"a job is stored with status {text!r}") from None
