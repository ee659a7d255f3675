"""The queue's commands: `stats`, `jobs`, `show`, `retry`, `cancel`, `purge`. Each calls the
library the functions use (`shared.queue`), over REST, with the CLI's own settings."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from cli.context import Context
from cli.durations import parse_duration_s
from cli.errors import EXIT_OK, Failed, UsageError
from cli.output import ago, table, text, when
from shared import clock
from shared.queue.job_ids import is_job_id
from shared.queue.listing import MAX_PAGE_SIZE, JobListQuery, list_jobs
from shared.queue.models import FINAL_STATUSES, ConcurrencyStats, JobStatus, JobView, QueueStats
from shared.queue.purge import count_purgeable, cutoff_ms, purge_jobs
from shared.queue.record import job_from_hash
from shared.queue.retry import MAX_IDS as RETRY_CHUNK
from shared.queue.retry import RetryResult, retry_by_status, retry_jobs
from shared.queue.stats import queue_stats
from shared.queue.status import cancel_job, job_not_found
from shared.store.client import call_redis
from shared.store.json_text import load_json
from shared.store.replies import as_hash

RETRY_BATCH = 100
PURGE_BATCH = 500
ERROR_CHARS = 60


async def stats(ctx: Context, _args: argparse.Namespace) -> int:
    result = await queue_stats(ctx.redis, ctx.settings, clock.now_ms())
    ctx.output.emit(result.body(), lambda console: _print_stats(console, ctx, result))
    return EXIT_OK


def _print_stats(console: Console, ctx: Context, result: QueueStats) -> None:
    counts = table(f"queue {ctx.settings.queue_name}", "status", "jobs", "last hour")
    last_hour = {"completed": result.completed_last_hour, "failed": result.failed_last_hour}
    for status in JobStatus:
        counts.add_row(
            status.value, str(getattr(result, status.value)), text(last_hour.get(status))
        )
    console.print(counts)
    console.print(f"oldest pending: {ago(result.oldest_pending_age_ms) or 'none'}")
    workers = table("workers", "id", "last seen", "active", "concurrency")
    now_ms = clock.now_ms()
    for worker in result.workers:
        seen = f"{ago(now_ms - worker.last_seen_ms)} ago"
        workers.add_row(worker.id, seen, str(worker.active), text(worker.concurrency))
    console.print(workers if result.workers else "workers: none seen in the last 10 minutes")
    _print_concurrency(console, result.concurrency)


def _print_concurrency(console: Console, concurrency: ConcurrencyStats) -> None:
    """The running jobs counted under TYPE_CONCURRENCY / USER_CONCURRENCY, against them."""
    if not concurrency.types and not concurrency.users and concurrency.user_limit is None:
        console.print("concurrency: no TYPE_CONCURRENCY or USER_CONCURRENCY limit")
        return
    if concurrency.types:
        types = table("concurrency", "type", "running", "limit")
        for entry in concurrency.types:
            types.add_row(entry.type, str(entry.running), _limit_text(entry.limit))
        console.print(types)
    user_limit = _limit_text(concurrency.user_limit)
    if not concurrency.users:
        console.print(f"users: none running (limit {user_limit})")
        return
    users = table("users", "user", "running", "limit")
    for user in concurrency.users:
        users.add_row(user.user_id, str(user.running), user_limit)
    console.print(users)


def _limit_text(limit: int | None) -> str:
    return "-" if limit is None else str(limit)


async def jobs(ctx: Context, args: argparse.Namespace) -> int:
    """Up to --limit jobs of a status, newest first, reading pages of up to 200."""
    wanted: int = args.limit
    found: list[JobView] = []
    cursor: str | None = args.cursor or ""
    while cursor is not None and len(found) < wanted:
        query = JobListQuery.model_validate(
            {
                "status": args.status,
                "limit": min(MAX_PAGE_SIZE, wanted - len(found)),
                "cursor": cursor,
                "type": args.type or "",
                "userId": args.user or "",
            }
        )
        page = await list_jobs(ctx.redis, ctx.settings, query)
        found += page.jobs
        cursor = page.next_cursor
    body = {"jobs": [job.body() for job in found], "nextCursor": cursor}
    ctx.output.emit(body, lambda console: _print_jobs(console, args.status, found, cursor))
    return EXIT_OK


def _print_jobs(console: Console, status: str, found: list[JobView], cursor: str | None) -> None:
    if not found:
        console.print(f"no {status} jobs")
    else:
        grid = table(None, "id", "type", "user", "pri", "tries", "created", "finished", "error")
        for job in found:
            error = job.error.message[:ERROR_CHARS] if job.error else ""
            attempts = f"{job.attempts}/{job.max_attempts}"
            grid.add_row(
                job.id, job.type, text(job.user_id), str(job.priority), attempts,
                when(job.created_at), when(job.finished_at), error,
            )  # fmt: skip
        console.print(grid)
    if cursor is not None:
        console.print(f"more: --cursor {cursor}")


async def show(ctx: Context, args: argparse.Namespace) -> int:
    job_id = job_id_argument(args.id)
    key = ctx.keys.job(job_id)
    reply = await call_redis(ctx.settings, lambda: ctx.redis.hgetall(key), safe_to_repeat=True)
    fields = as_hash(reply, "HGETALL")
    if not fields:
        raise job_not_found()
    body = job_from_hash(fields).body()
    body["data"] = load_json(fields["data"]) if fields.get("data") else None
    ctx.output.emit(body, lambda console: _print_job(console, body))
    return EXIT_OK


def _print_job(console: Console, body: dict[str, Any]) -> None:
    grid = table(f"job {body['id']}", "field", "value")
    for name, value in body.items():
        shown = when(value) if name.endswith("At") and isinstance(value, int) else value
        grid.add_row(name, text(shown))
    console.print(grid)


async def retry(ctx: Context, args: argparse.Namespace) -> int:
    if args.all_failed == bool(args.ids):
        raise UsageError("name the jobs to retry (retry ID...) or pass --all-failed, not both")
    if args.ids:
        ids = [job_id_argument(job_id) for job_id in args.ids]
        ctx.confirm(f"Retry {len(ids)} job(s)? They run again.")
        result = await _retry_named(ctx, ids)
    else:
        result = await _retry_all_failed(ctx)
    ctx.output.emit(result.body(), lambda console: _print_retry(console, result))
    if result.skipped and not args.all_failed:
        raise Failed(f"{len(result.skipped)} of the named jobs could not be retried")
    return EXIT_OK


async def _retry_named(ctx: Context, ids: list[str]) -> RetryResult:
    total = RetryResult(retried=0, ids=[], skipped=[], remaining=0)
    for start in range(0, len(ids), RETRY_CHUNK):
        part = await retry_jobs(
            ctx.redis, ctx.settings, ids[start : start + RETRY_CHUNK], clock.now_ms()
        )
        total = _joined(total, part)
    return total


async def _retry_all_failed(ctx: Context) -> RetryResult:
    index = ctx.keys.done(JobStatus.FAILED)
    count = await call_redis(ctx.settings, lambda: ctx.redis.zcard(index), safe_to_repeat=True)
    total = RetryResult(retried=0, ids=[], skipped=[], remaining=0)
    if not count:
        return total
    ctx.confirm(f"Retry all {count} failed jobs? They run again.")
    with ctx.output.progress("retrying failed jobs", total=count) as progress:
        seen = 0
        while seen < count:  # jobs failing meanwhile wait for the next run
            part = await retry_by_status(
                ctx.redis, ctx.settings, "failed", clock.now_ms(), RETRY_BATCH
            )
            total = _joined(total, part)
            progress.advance(part.retried + len(part.skipped))
            seen += part.retried + len(part.skipped)
            if part.remaining == 0 or part.retried + len(part.skipped) == 0:
                break
    return total


def _joined(total: RetryResult, part: RetryResult) -> RetryResult:
    return RetryResult(
        retried=total.retried + part.retried,
        ids=total.ids + part.ids,
        skipped=total.skipped + part.skipped,
        remaining=part.remaining,
    )


def _print_retry(console: Console, result: RetryResult) -> None:
    console.print(f"retried {result.retried} job(s)")
    for job in result.skipped:
        reason = f"it is {job.status.value}" if job.status else "there is no such job"
        console.print(f"not retried: {job.id} ({reason})")


async def cancel(ctx: Context, args: argparse.Namespace) -> int:
    job_id = job_id_argument(args.id)
    ctx.confirm(f"Cancel job {job_id}?")
    cancelled = await cancel_job(ctx.redis, ctx.settings, job_id, None, clock.now_ms())
    body = cancelled.job.body()
    message = (
        f"cancel requested: job {job_id} is running; its worker stops it"
        if cancelled.requested
        else f"job {job_id} is cancelled"
    )
    ctx.output.emit(body, lambda console: console.print(message))
    return EXIT_OK


async def purge(ctx: Context, args: argparse.Namespace) -> int:
    try:
        older_than_s = parse_duration_s(args.older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None
    status = args.status
    cutoff = cutoff_ms(clock.now_ms(), older_than_s)
    count = await count_purgeable(ctx.redis, ctx.settings, status, cutoff)
    purged = 0
    if count:
        ctx.confirm(f"Delete {count} {status} job(s) that finished before {when(cutoff)}?")
        with ctx.output.progress(f"purging {status} jobs", total=count) as progress:
            left = count  # index entries before the cutoff: jobs, or entries of expired ones
            while left:
                part = await purge_jobs(ctx.redis, ctx.settings, status, cutoff, PURGE_BATCH)
                purged += part.purged
                progress.advance(max(0, left - part.remaining))
                if part.remaining >= left:  # no progress: jobs finishing meanwhile, say
                    break
                left = part.remaining
    body = {"purged": purged, "status": status, "finishedBefore": cutoff}
    ctx.output.emit(body, lambda console: console.print(f"purged {purged} {status} job(s)"))
    return EXIT_OK


def job_id_argument(text_id: str) -> str:
    if not is_job_id(text_id):
        raise UsageError(f"{text_id!r} is not a job id (26 characters of Crockford base32)")
    return text_id


FINAL_STATUS_NAMES = [status.value for status in FINAL_STATUSES]
