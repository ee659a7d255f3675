"""The stored records of the queue, encoded and decoded here only: the job HASH (`job:<id>`)
and a worker's heartbeat in the `workers` HASH. Fields are strings; "" or absent means null.

Job HASH fields: id type userId status priority attempts maxAttempts timeoutMs data progress
result error webhook history (JSON text) createdAt runAt startedAt finishedAt updatedAt (epoch
ms) token idempotencyKey requestHash (the fingerprint of an idempotent request) callbackUrl
cancelRequested ("1" once a cancel of the running job was asked for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.errors import BadRedisReply
from shared.queue.models import JobError, JobView, Progress, WorkerInfo
from shared.store.json_text import compact_json, load_json

if TYPE_CHECKING:
    from shared.queue.new_job import NewJob

_INT_FIELDS = (
    "priority",
    "attempts",
    "maxAttempts",
    "createdAt",
    "runAt",
    "startedAt",
    "finishedAt",
    "updatedAt",
)
_JSON_FIELDS = ("progress", "result", "error", "webhook", "history")
_TEXT_FIELDS = ("id", "type", "userId", "status")
_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,17}$")


def new_job_fields(job: NewJob) -> list[str]:
    """The HASH of a new job as HSET's field/value arguments (empty values left out)."""
    fields = {
        "id": job.id,
        "type": job.request.type,
        "userId": job.user_id or "",
        "status": job.status.value,
        "priority": str(job.request.priority),
        "attempts": "0",
        "maxAttempts": str(job.request.max_attempts),
        "timeoutMs": str(job.request.timeout_ms),
        "data": job.request.data_json,
        "createdAt": str(job.created_at_ms),
        "runAt": str(job.run_at_ms),
        "updatedAt": str(job.created_at_ms),
        "callbackUrl": job.request.callback_url or "",
        "idempotencyKey": job.idempotency_key or "",
        "requestHash": job.fingerprint if job.idempotency_key else "",
    }
    return [item for name, value in fields.items() if value for item in (name, value)]


def model_json(value: JobError | Progress) -> str:
    """The stored form of a job's `error` or `progress` field."""
    return compact_json(value.model_dump(mode="json", exclude_none=True))


def job_from_hash(fields: Mapping[str, str]) -> JobView:
    """Validate a job HASH as read from Redis; BadRedisReply if it is not one."""
    try:
        values: dict[str, Any] = {name: _text(fields, name) for name in _TEXT_FIELDS}
        values |= {name: _integer(fields, name) for name in _INT_FIELDS}
        values |= {name: _json(fields, name) for name in _JSON_FIELDS}
        values["cancelRequested"] = True if fields.get("cancelRequested") == "1" else None
        return JobView.model_validate(values)
    except (ValueError, ValidationError) as error:
        job_id = fields.get("id", "?")
        raise BadRedisReply(f"job {job_id} is stored in an unexpected shape: {error}") from None


def heartbeat_json(now_ms: int, active: int, concurrency: int) -> str:
    """A worker's entry in the `workers` HASH. `active` is what it held at this beat; stats
    report its live leases instead (`shared.queue.stats`)."""
    beat = {"lastSeenMs": now_ms, "active": active, "concurrency": concurrency}
    return json.dumps(beat, separators=(",", ":"))


def workers_from_hash(workers: Mapping[str, str]) -> list[WorkerInfo]:
    """The `workers` HASH (id -> heartbeat JSON), validated."""
    try:
        return [
            WorkerInfo.model_validate({**load_json(info), "id": worker_id})
            for worker_id, info in sorted(workers.items())
        ]
    except (ValueError, TypeError, ValidationError) as error:
        raise BadRedisReply(f"a worker entry is not valid: {error}") from None


def _text(fields: Mapping[str, str], name: str) -> str | None:
    return fields.get(name) or None


def _integer(fields: Mapping[str, str], name: str) -> int | None:
    raw = fields.get(name) or None
    if raw is None:
        return None
    if not _INTEGER_TEXT.fullmatch(raw):
        raise ValueError(f"{name}={raw!r} is not an integer")
    return int(raw)


def _json(fields: Mapping[str, str], name: str) -> Any:
    raw = fields.get(name) or None
    return None if raw is None else load_json(raw)
