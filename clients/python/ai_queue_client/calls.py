"""Each API call as an `Operation` (see `exchange`): what it sends, which statuses it accepts,
how its reply is read. `wait` is the one that loops: a long-poll of `GET /api/status`."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ai_queue_client.errors import JobWaitTimeout
from ai_queue_client.exchange import Call, Notify, Operation, Pause, request
from ai_queue_client.json_reader import JsonObject
from ai_queue_client.models import EnqueueRequest, Job, QueueStats, RateLimitDecision

MAX_WAIT_MS = 25_000  # the most one long-poll may ask the server to hold (SPEC section 10)
EARLY_FRACTION = 0.9  # an answer sooner than this share of waitMs did not wait
ENQUEUE_FIELDS = frozenset(EnqueueRequest.__required_keys__ | EnqueueRequest.__optional_keys__)

OnUpdate = Callable[[Job], Awaitable[None] | None]


def enqueue(job: Mapping[str, Any]) -> Operation[Job]:
    """POST /api/enqueue: 202 a new job, 200 the one its idempotency key already created."""
    body = enqueue_body(job)
    key = body.pop("idempotencyKey", None)
    headers = {} if key is None else {"Idempotency-Key": key}
    return request(
        Call("POST", "enqueue", json=body, headers=headers), Job.from_json, ok=(200, 202)
    )


def enqueue_many(jobs: Sequence[Mapping[str, Any]]) -> Operation[list[Job]]:
    """POST /api/enqueue with `{"jobs": [...]}`: all of them or none (SPEC section 12)."""
    if not isinstance(jobs, list | tuple):
        raise TypeError("enqueue_many takes a list of jobs (each a mapping like EnqueueRequest)")
    body = {"jobs": [enqueue_body(job) for job in jobs]}
    return request(Call("POST", "enqueue", json=body), _jobs, ok=(200, 202))


def status(job_id: str) -> Operation[Job]:
    return request(Call("GET", "status", params={"id": _job_id(job_id)}), Job.from_json)


def cancel(job_id: str) -> Operation[Job]:
    """DELETE /api/status: 200 the job, cancelled; 202 a running job, `cancel_requested`."""
    call = Call("DELETE", "status", params={"id": _job_id(job_id)})
    return request(call, Job.from_json, ok=(200, 202))


def check_rate_limit(
    policy: str, identifier: str | None = None, cost: int = 1, *, consume: bool = True
) -> Operation[RateLimitDecision]:
    body: dict[str, Any] = {"policy": policy, "cost": cost, "consume": consume}
    if identifier is not None:
        body["identifier"] = identifier
    return request(Call("POST", "ratelimit-check", json=body), RateLimitDecision.from_json)


def stats() -> Operation[QueueStats]:
    return request(Call("GET", "stats"), QueueStats.from_json)


def wait(
    job_id: str,
    *,
    timeout_s: float,
    on_update: OnUpdate | None,
    poll_interval_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Operation[Job]:
    """The job once it is final, `on_update` called with every version of it seen (the first,
    each change, the last). Each request long-polls (`waitMs`, `after=<updatedAt>`); when an
    answer comes sooner than asked and nothing changed (a server that does not hold requests),
    it pauses `poll_interval_s` before asking again. JobWaitTimeout after `timeout_s`."""
    _check_wait_args(timeout_s, poll_interval_s)
    deadline = clock() + timeout_s
    job = yield from status(job_id)
    if on_update is not None:
        yield Notify(on_update, job)
    while not job.is_final:
        if clock() >= deadline:
            raise JobWaitTimeout(job, timeout_s)
        wait_ms = min(MAX_WAIT_MS, math.ceil((deadline - clock()) * 1000))
        asked_at = clock()
        latest = yield from request(_long_poll(job, wait_ms), Job.from_json)
        answered_early = clock() - asked_at < EARLY_FRACTION * wait_ms / 1000
        if latest != job and on_update is not None:
            yield Notify(on_update, latest)
        elif latest == job and answered_early:
            yield Pause(max(0.0, min(poll_interval_s, deadline - clock())))
        job = latest
    return job


def enqueue_body(job: Mapping[str, Any]) -> dict[str, Any]:
    """The API's camelCase body of one job; an option this client does not know is a TypeError
    (a typo would otherwise be the server's 422)."""
    if not isinstance(job, Mapping):
        raise TypeError(f"a job is a mapping like EnqueueRequest, not {type(job).__name__}")
    unknown = sorted(set(job) - ENQUEUE_FIELDS)
    if unknown:
        raise TypeError(f"unknown enqueue fields {unknown}; known: {sorted(ENQUEUE_FIELDS)}")
    return {camel_case(name): value for name, value in job.items() if value is not None}


def camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _long_poll(job: Job, wait_ms: int) -> Call:
    params = {"id": job.id, "waitMs": str(wait_ms)}
    if job.updated_at is not None:
        params["after"] = str(job.updated_at)
    return Call("GET", "status", params=params, extra_timeout_s=wait_ms / 1000)


def _jobs(value: object) -> list[Job]:
    return list(JsonObject(value, "batch").items("jobs", Job.from_json))


def _job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"a job id is a non-empty string, not {job_id!r}")
    return job_id


def _check_wait_args(timeout_s: float, poll_interval_s: float) -> None:
    if not math.isfinite(timeout_s) or timeout_s < 0:
        raise ValueError(f"timeout_s must be a finite number of seconds >= 0, not {timeout_s!r}")
    if not math.isfinite(poll_interval_s) or poll_interval_s <= 0:
        raise ValueError(
            f"poll_interval_s must be a number of seconds > 0, not {poll_interval_s!r}"
        )
