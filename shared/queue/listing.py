"""Listing jobs by status (`GET /api/jobs`, `python -m cli jobs`): newest first, a page at a
time, optionally only one type or one user's.

Each status has its index: `pending` the `ready` ZSET, `delayed` the `delayed` ZSET,
`processing` the `leases` ZSET, the final statuses their `done:<status>` ZSET. "Newest first"
is each index's own order reversed, as BullMQ's `getJobs` does: finished jobs by `finishedAt`,
delayed jobs by when they are due (latest first), running jobs by lease deadline, pending jobs
by ready score, that is by priority band (9 first) and, within one priority, the latest ready
first. The cursor names the last entry shown (`index_page.lua`), so a page is never repeated or
skipped while jobs come and go.

Cost, per call: **two** requests to Upstash, not one (SPEC 6 asks one per function call, and
for a script to be given every key it touches, which a listing cannot do: it learns the job keys
only by reading the index). 1. `index_page.lua` on the index: billed 2 (EVALSHA and one
ZREVRANGEBYSCORE; +1 per further `limit + 1` entries of one tied score skipped after a cursor).
2. One pipeline of `limit` HGETALLs: billed `limit`. A page of 50 bills 52 commands.

`type` and `userId` filter the jobs read, not the index (it knows neither): a filtered page
reads `limit` index entries and may hold fewer jobs, even none, while `nextCursor` says that
more follow. So does a page where jobs changed status between the two requests (they are left
out) or expired (their index entry outlived them).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field
from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply, ValidationFailed
from shared.queue.job_ids import is_job_id
from shared.queue.models import (
    JOB_TYPE_PATTERN,
    MAX_USER_ID_CHARS,
    ApiModel,
    JobStatus,
    JobView,
)
from shared.queue.record import job_from_hash
from shared.store.client import call_redis
from shared.store.keys import LEASE_MEMBER_SEPARATOR, QueueKeys
from shared.store.replies import as_hash, as_list, as_str
from shared.store.scripts import ScriptArg, load_script, run_script

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_CURSOR_CHARS = 512
OPTIONAL_JOB_TYPE_PATTERN = f"^({JOB_TYPE_PATTERN.strip('^$')})?$"
_SCORE = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_MEMBER = re.compile(r"^[\x21-\x7e]{1,200}$")


class JobListQuery(ApiModel):
    """The query of `GET /api/jobs`; values arrive as query-string text (never null)."""

    model_config = ConfigDict(extra="forbid")

    status: JobStatus
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    # Empty (`?type=`, as absent: the query parser drops blank values) is no cursor, no filter.
    cursor: Annotated[str, Field(max_length=MAX_CURSOR_CHARS)] = ""
    type: Annotated[str, Field(pattern=OPTIONAL_JOB_TYPE_PATTERN)] = ""
    user_id: Annotated[str, Field(max_length=MAX_USER_ID_CHARS)] = ""


class JobPage(ApiModel):
    """A page of jobs, newest first. `nextCursor` is null on the last page."""

    jobs: list[JobView]
    next_cursor: str | None


@dataclass(frozen=True)
class IndexEntry:
    """A member of a status index and its score, as Redis printed it."""

    member: str
    score: str


def index_key(keys: QueueKeys, status: JobStatus) -> str:
    """The ZSET that lists the jobs of `status`."""
    match status:
        case JobStatus.PENDING:
            return keys.ready
        case JobStatus.DELAYED:
            return keys.delayed
        case JobStatus.PROCESSING:
            return keys.leases
    return keys.done(status)


async def list_jobs(redis: Redis, settings: Settings, query: JobListQuery) -> JobPage:
    keys = QueueKeys(settings.queue_name)
    after = decode_cursor(query.cursor, query.status) if query.cursor else None
    entries, more = await index_page(redis, settings, index_key(keys, query.status), query, after)
    ids = [job_id for job_id in (_job_id(entry.member) for entry in entries) if job_id]
    jobs = [job for job in await read_jobs(redis, settings, keys, ids) if _wanted(job, query)]
    next_cursor = encode_cursor(query.status, entries[-1]) if more and entries else None
    return JobPage(jobs=jobs, next_cursor=next_cursor)


async def index_page(
    redis: Redis, settings: Settings, key: str, query: JobListQuery, after: IndexEntry | None
) -> tuple[list[IndexEntry], bool]:
    args: list[ScriptArg] = [
        query.limit,
        after.score if after else "",
        after.member if after else "",
    ]
    reply = await run_script(
        redis, settings, load_script("queue/index_page"), [key], args, safe_to_repeat=True
    )
    match as_list(reply, "index_page"):
        case [int() as more, *flat] if len(flat) % 2 == 0:
            members = [as_str(item, "index_page") for item in flat]
            entries = [IndexEntry(m, s) for m, s in zip(members[::2], members[1::2], strict=True)]
            return entries, more == 1
    raise BadRedisReply(f"index_page replied {reply!r:.200}")


async def read_jobs(
    redis: Redis, settings: Settings, keys: QueueKeys, ids: list[str]
) -> list[JobView]:
    """The jobs that still exist, in the order of `ids`: one pipeline of HGETALLs."""
    if not ids:
        return []

    async def send() -> list[RESTResultT]:
        pipeline = redis.pipeline()
        for job_id in ids:
            pipeline.hgetall(keys.job(job_id))
        return await pipeline.exec()

    replies = await call_redis(settings, send, safe_to_repeat=True)
    hashes = [as_hash(reply, "HGETALL") for reply in replies]
    return [job_from_hash(fields) for fields in hashes if fields]


def _job_id(member: str) -> str | None:
    """The job id of an index member (a lease member is `<id>|<token>`)."""
    job_id = member.partition(LEASE_MEMBER_SEPARATOR)[0]
    return job_id if is_job_id(job_id) else None


def _wanted(job: JobView, query: JobListQuery) -> bool:
    """The job still has the listed status (it may have moved since the index was read) and
    passes the filters."""
    return (
        job.status == query.status
        and (not query.type or job.type == query.type)
        and (not query.user_id or job.user_id == query.user_id)
    )


def encode_cursor(status: JobStatus, entry: IndexEntry) -> str:
    text = f"{status.value}\n{entry.score}\n{entry.member}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, status: JobStatus) -> IndexEntry:
    """The entry a cursor names; 422 when it is not one this listing made."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, ValueError, binascii.Error):
        raise _bad_cursor("is not a cursor from this API") from None
    parts = text.split("\n")
    if len(parts) != 3 or not _SCORE.fullmatch(parts[1]) or not _MEMBER.fullmatch(parts[2]):
        raise _bad_cursor("is not a cursor from this API")
    if parts[0] != status.value:
        raise _bad_cursor(f"belongs to the listing of {parts[0]!r} jobs, not {status.value!r}")
    return IndexEntry(parts[2], parts[1])


def _bad_cursor(message: str) -> ValidationFailed:
    error = {"field": "cursor", "message": message, "type": "value_error"}
    return ValidationFailed("the cursor is not valid", errors=[error])
