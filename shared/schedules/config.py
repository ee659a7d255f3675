"""`SCHEDULES`: the recurring jobs of a deployment (SPEC section 12), a JSON list of
`{"name", "cron", "timezone"?, "job"}`, where `job` is an enqueue body. Parsed and validated
once per value, and listed with each schedule's next run (for the CLI and the dashboard).

    SCHEDULES='[{"name": "nightly-report", "cron": "0 3 * * *", "timezone": "Europe/Paris",
                 "job": {"type": "report.build", "data": {"scope": "yesterday"}}}]'

A schedule's job belongs to no user unless its `userId` says so, is never rate-limited, and
may not carry `idempotencyKey` (each slot is its own key) or `runAt` (`delayMs` is fine). A bad
value is a 500 `server_misconfigured` naming SCHEDULES, the schedule and the field.
"""

from __future__ import annotations

import functools
import json
from datetime import tzinfo
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.config.settings import Settings
from shared.errors import AppError, ServerMisconfigured
from shared.queue.models import ApiModel, EnqueueRequest
from shared.schedules.cron import BadSchedule, cron_expression, next_slot_ms, time_zone
from shared.web.auth import Principal
from shared.webhooks.targets import check_callback_url

SCHEDULE_NAME_PATTERN = r"^[a-z0-9_.:-]{1,64}$"
MAX_SCHEDULES = 100
SCHEDULE_OWNER = Principal(user_id=None, is_service=True)  # who enqueues the slots' jobs


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, Field(pattern=SCHEDULE_NAME_PATTERN)]
    cron: str
    timezone: str = "UTC"
    job: EnqueueRequest

    @field_validator("cron")
    @classmethod
    def _is_cron(cls, value: str) -> str:
        try:
            return cron_expression(value)
        except BadSchedule as error:
            raise ValueError(str(error)) from None

    @field_validator("timezone")
    @classmethod
    def _is_a_zone(cls, value: str) -> str:
        try:
            time_zone(value)
        except BadSchedule as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("job")
    @classmethod
    def _slots_name_their_jobs(cls, job: EnqueueRequest) -> EnqueueRequest:
        if job.idempotency_key is not None:
            raise ValueError("may not set idempotencyKey: each slot is the key of its own job")
        if job.run_at is not None:
            raise ValueError("may not set runAt (a schedule runs at its slots; delayMs works)")
        return job

    @property
    def zone(self) -> tzinfo:
        return time_zone(self.timezone)

    def slot_key(self, slot_ms: int) -> str:
        """The idempotency key of the job of one slot."""
        return f"schedule:{self.name}:{slot_ms}"


class ScheduleInfo(ApiModel):
    """A schedule as the CLI and the dashboard show it."""

    name: str
    cron: str
    timezone: str
    type: str  # the job's
    next_run_at: int | None  # epoch ms; None when the expression matches nothing in 50 years


def schedules_of(settings: Settings) -> tuple[Schedule, ...]:
    """The schedules `SCHEDULES` names (none when it is unset); ServerMisconfigured if bad."""
    if not settings.schedules:
        return ()
    schedules = _parse(settings.schedules, settings.max_job_data_bytes)
    for schedule in schedules:
        if schedule.job.callback_url is not None:
            _check_callback(schedule, settings)
    return schedules


def list_schedules(settings: Settings, now_ms: int) -> list[ScheduleInfo]:
    return [
        ScheduleInfo(
            name=schedule.name,
            cron=schedule.cron,
            timezone=schedule.timezone,
            type=schedule.job.type,
            next_run_at=next_slot_ms(schedule.cron, schedule.zone, now_ms),
        )
        for schedule in schedules_of(settings)
    ]


@functools.lru_cache(maxsize=8)
def _parse(raw: str, max_data_bytes: int) -> tuple[Schedule, ...]:
    try:
        items = json.loads(raw)
    except ValueError as error:
        raise _misconfigured(f"is not valid JSON: {error}") from None
    if not isinstance(items, list) or len(items) > MAX_SCHEDULES:
        raise _misconfigured(f"must be a JSON list of at most {MAX_SCHEDULES} schedules")
    schedules = tuple(_schedule(at, item, max_data_bytes) for at, item in enumerate(items))
    names = [schedule.name for schedule in schedules]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise _misconfigured(f"names {', '.join(repeated)} more than once; names are unique")
    return schedules


def _schedule(at: int, item: Any, max_data_bytes: int) -> Schedule:
    try:
        return Schedule.model_validate(item, context={"max_data_bytes": max_data_bytes})
    except ValidationError as error:
        name = item.get("name") if isinstance(item, dict) else None
        where = f"[{at}]" + (f" ({name})" if isinstance(name, str) else "")
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'schedule'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise _misconfigured(f"{where} {problems}") from None


def _check_callback(schedule: Schedule, settings: Settings) -> None:
    url = schedule.job.callback_url or ""
    try:
        check_callback_url(url, SCHEDULE_OWNER, settings)
    except AppError as error:
        reason = "; ".join(problem.get("message", "") for problem in error.errors)
        raise _misconfigured(
            f"({schedule.name}) job.callbackUrl: {reason or error.detail}"
        ) from None


def _misconfigured(problem: str) -> ServerMisconfigured:
    return ServerMisconfigured(f"invalid configuration: SCHEDULES {problem}")
