"""Fire recurring jobs: what the cron tick (`functions/cron.py`) runs every minute.

Each schedule fires at most its latest due slot (the last one at or before now), as a job whose
idempotency key is the slot (`schedule:<name>:<slot ms>`): ticks that overlap or repeat make
one job per slot. Redis keeps the slot each schedule fired last (`schedule:<name>`), so a slot
fires once even after its job has expired, and after ticks stopped for a while only the latest
missed slot fires, late, once: never a burst. A schedule seen for the first time (no record)
fires its latest slot only if it fell within `FIRST_SLOT_GRACE_MS`; an older one is recorded
as if fired, so adding a daily schedule in the afternoon does not run the morning's at once.
A record lasts until a week after the schedule's next slot (`RECORD_GRACE_MS`): ticks stopped
for longer than that skip the slot they missed.

A tick costs one request (an MGET of the records) when nothing is due; with slots due, two
more: one enqueue of all their jobs (`shared.queue.enqueue.enqueue_jobs`, no rate limits) and
one script that moves the records forward (never back, whatever order ticks finish in).
"""

from __future__ import annotations

from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.queue.enqueue import EnqueuedBatch, enqueue_jobs
from shared.queue.models import EnqueueOutcome
from shared.queue.new_job import NewJob, new_job
from shared.schedules.config import Schedule, schedules_of
from shared.schedules.cron import latest_slot_ms, next_slot_ms
from shared.store.client import call_redis
from shared.store.keys import QueueKeys
from shared.store.scripts import ScriptArg, load_script, run_script

FIRST_SLOT_GRACE_MS = 10 * 60_000
RECORD_GRACE_MS = 7 * 86_400_000


@dataclass(frozen=True)
class FiredSlot:
    """One slot's job. `created` is False when a tick before this one had made it already."""

    name: str
    slot_ms: int
    job_id: str
    created: bool


@dataclass(frozen=True)
class _Due:
    schedule: Schedule
    slot_ms: int
    fire: bool  # False: only record it (a new schedule's slot from before the grace)


async def fire_due_schedules(redis: Redis, settings: Settings, now_ms: int) -> list[FiredSlot]:
    """Enqueue the job of every schedule's slot that is due and not yet fired."""
    schedules = schedules_of(settings)
    if not schedules:
        return []
    keys = QueueKeys(settings.queue_name)
    due = await _due(redis, settings, keys, schedules, now_ms)
    jobs = [_slot_job(item, now_ms) for item in due if item.fire]
    fired = await _enqueue(redis, settings, [item for item in due if item.fire], jobs)
    if due:
        await advance_schedules(redis, settings, keys, [_record(item, now_ms) for item in due])
    return fired


async def _due(
    redis: Redis, settings: Settings, keys: QueueKeys, schedules: tuple[Schedule, ...], now_ms: int
) -> list[_Due]:
    names = [keys.schedule(schedule.name) for schedule in schedules]
    records = await call_redis(settings, lambda: redis.mget(*names), safe_to_repeat=True)
    due = []
    for schedule, record in zip(schedules, records, strict=True):
        slot_ms = latest_slot_ms(schedule.cron, schedule.zone, now_ms)
        last_ms = _as_ms(record)
        if slot_ms is None or (last_ms is not None and last_ms >= slot_ms):
            continue
        fire = last_ms is not None or slot_ms >= now_ms - FIRST_SLOT_GRACE_MS
        due.append(_Due(schedule, slot_ms, fire))
    return due


def _as_ms(record: object) -> int | None:
    """A record's slot; None for none (or one not written by this module)."""
    if isinstance(record, str) and record.isdigit():
        return int(record)
    return None


def _slot_job(item: _Due, now_ms: int) -> NewJob:
    job = item.schedule.job
    return new_job(job, job.user_id, item.schedule.slot_key(item.slot_ms), now_ms)


async def _enqueue(
    redis: Redis, settings: Settings, due: list[_Due], jobs: list[NewJob]
) -> list[FiredSlot]:
    """One enqueue for every due slot. A slot whose key already names a job of another request
    (its schedule's job was edited since that slot fired) counts as fired; the others are then
    enqueued again without it."""
    while jobs:
        batch = await enqueue_jobs(redis, settings, jobs, [])
        if batch.reused_at is None:
            return [
                FiredSlot(item.schedule.name, item.slot_ms, view.id, created)
                for item, view, created in zip(due, batch.jobs, _created(batch), strict=True)
            ]
        del due[batch.reused_at], jobs[batch.reused_at]
    return []


def _created(batch: EnqueuedBatch) -> list[bool]:
    return [outcome is EnqueueOutcome.CREATED for outcome in batch.outcomes]


def _record(item: _Due, now_ms: int) -> tuple[str, int, int]:
    schedule = item.schedule
    next_ms = next_slot_ms(schedule.cron, schedule.zone, now_ms) or now_ms
    return schedule.name, item.slot_ms, next_ms - now_ms + RECORD_GRACE_MS


async def advance_schedules(
    redis: Redis, settings: Settings, keys: QueueKeys, records: list[tuple[str, int, int]]
) -> int:
    """Record `(name, slot_ms, ttl_ms)` for each schedule whose record is older; how many moved."""
    names = [keys.schedule(name) for name, _, _ in records]
    args: list[ScriptArg] = [value for _, slot, ttl in records for value in (slot, ttl)]
    moved = await run_script(
        redis,
        settings,
        load_script("schedules/advance_schedules"),
        names,
        args,
        safe_to_repeat=True,
    )
    return int(moved) if isinstance(moved, int) else 0
