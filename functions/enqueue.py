"""POST /api/enqueue: validate, rate-limit and create a job, or a batch, in one Upstash request.

One job: 202 + Location for a new job; 200 + `Idempotent-Replayed: true` with the original job
when the idempotency key is known; with a `cacheKey`, 200 + `Job-Cache: hit` (a completed job
within `cacheTtlS`) or `Job-Cache: attached` (one still to run or running), and
`Job-Cache: miss` on a 202; 429 when a rate limit denies (nothing consumed, no job).

A batch, `{"jobs": [...]}` (1-100): 202 `{"jobs": [...], "outcomes": [...]}` when any job is new
(else 200), every job in the order sent with what was done for it (`created`, `replayed`, `hit`,
`attached`). Only new jobs are charged, the batch all or nothing (a denial: 429, nothing
written). `Idempotent-Replayed` or `Job-Cache` is sent when it holds for every job of the batch.
The `Idempotency-Key` header is for one job; a batch names its keys per job.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import RootModel

from shared import clock
from shared.config.settings import get_settings
from shared.errors import Forbidden, IdempotencyKeyReused, PayloadTooLarge
from shared.queue.enqueue import REUSED_DETAIL, EnqueuedBatch, enqueue_jobs
from shared.queue.models import (
    EnqueueBatch,
    EnqueueBatchResult,
    EnqueueOutcome,
    EnqueueRequest,
    enqueue_context,
    is_idempotency_key,
    max_batch_body_bytes,
    max_enqueue_body_bytes,
)
from shared.queue.new_job import NewJob, new_job
from shared.ratelimit.checks import checks_for_enqueue
from shared.web.caller import Caller, identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response
from shared.web.validation import field_error, parse_json, validate
from shared.webhooks.targets import check_callback_url

CACHE_HEADERS = {EnqueueOutcome.HIT: "hit", EnqueueOutcome.ATTACHED: "attached"}


class _JsonObject(RootModel[dict[str, Any]]):
    """Any JSON object: a body is read once, then judged as one job or as a batch."""


async def enqueue(request: Request) -> Response:
    _check_size(request)
    caller = await identify(request)
    jobs, is_batch = parse_new_jobs(caller, request)
    owner = jobs[0].user_id or ""  # every job of a batch has the same owner
    checks = checks_for_enqueue(caller.settings, owner, caller.limited_ip)
    batch = await enqueue_jobs(caller.redis, caller.settings, jobs, checks)
    if batch.reused_at is not None:
        raise _reused(batch.reused_at, is_batch)
    if not batch.jobs:
        raise batch.decision.refusal()
    return batch_response(batch) if is_batch else job_response(batch, jobs[0])


def parse_new_jobs(caller: Caller, request: Request) -> tuple[list[NewJob], bool]:
    """The jobs of the body and whether it was a batch; every rule checked before Redis."""
    now_ms = clock.now_ms()
    body = parse_json(request, _JsonObject).root
    context = enqueue_context(caller.settings.max_job_data_bytes, now_ms)
    if "jobs" in body:
        if request.header("idempotency-key") is not None:
            raise field_error(
                "the Idempotency-Key header is for one job",
                "header/Idempotency-Key",
                "a batch names idempotencyKey per job",
            )
        batch = validate(EnqueueBatch, body, context=context)
        jobs = [_new_job(caller, job, job.idempotency_key, now_ms) for job in batch.jobs]
        _check_one_owner(jobs)
        return jobs, True
    single = validate(EnqueueRequest, body, context=context)
    return [_new_job(caller, single, idempotency_key(request, single), now_ms)], False


def _check_size(request: Request) -> None:
    """Only a batch may exceed one job's body limit (413 before anything else)."""
    limit = max_enqueue_body_bytes(get_settings().max_job_data_bytes)
    if len(request.body) > limit and not _is_batch(request.body):
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")


def _is_batch(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and "jobs" in parsed


def _check_one_owner(jobs: list[NewJob]) -> None:
    """A batch is charged as one request of one owner, so its jobs name one user (or none)."""
    for position, job in enumerate(jobs):
        if job.user_id != jobs[0].user_id:
            raise field_error(
                "the jobs of a batch belong to one user",
                f"jobs/{position}/userId",
                "differs from the userId of job 0; send one batch per user",
            )


def _new_job(caller: Caller, body: EnqueueRequest, key: str | None, now_ms: int) -> NewJob:
    user_id = caller.principal.acting_user(body.user_id)
    if body.callback_url is not None:
        check_callback_url(body.callback_url, caller.principal, caller.settings)
    if body.cache_scope == "global" and not caller.principal.is_service:
        raise Forbidden('cacheScope "global" needs a service key; users cache their own jobs')
    return new_job(body, user_id, key, now_ms)


def idempotency_key(request: Request, body: EnqueueRequest) -> str | None:
    """The `Idempotency-Key` header or the body's `idempotencyKey` (the same, if both)."""
    header = request.header("idempotency-key")
    if header is None:
        return body.idempotency_key
    problem = None
    if not is_idempotency_key(header):
        problem = "must be 1-128 printable ASCII characters"
    elif body.idempotency_key is not None and body.idempotency_key != header:
        problem = "differs from idempotencyKey in the body"
    if problem:
        raise field_error(
            "the Idempotency-Key header is not valid", "header/Idempotency-Key", problem
        )
    return header


def _reused(position: int, is_batch: bool) -> IdempotencyKeyReused:
    if not is_batch:
        return IdempotencyKeyReused(REUSED_DETAIL)
    error = {"field": f"jobs/{position}/idempotencyKey", "message": REUSED_DETAIL}
    return IdempotencyKeyReused(
        f"job {position} of the batch: {REUSED_DETAIL}",
        errors=[{**error, "type": "idempotency_key_reused"}],
    )


def job_response(batch: EnqueuedBatch, job: NewJob) -> Response:
    view, outcome = batch.jobs[0], batch.outcomes[0]
    headers = {**batch.decision.headers(), "Location": f"/api/status?id={view.id}"}
    if outcome is EnqueueOutcome.REPLAYED:
        headers["Idempotent-Replayed"] = "true"
    elif outcome in CACHE_HEADERS:
        headers["Job-Cache"] = CACHE_HEADERS[outcome]
    elif job.request.cache_key is not None:
        headers["Job-Cache"] = "miss"
    status = 202 if outcome is EnqueueOutcome.CREATED else 200
    return json_response(status, view.body(), headers)


def batch_response(batch: EnqueuedBatch) -> Response:
    headers = batch.decision.headers()
    kinds = set(batch.outcomes)
    if kinds == {EnqueueOutcome.REPLAYED}:
        headers["Idempotent-Replayed"] = "true"
    elif len(kinds) == 1 and (only := kinds.pop()) in CACHE_HEADERS:
        headers["Job-Cache"] = CACHE_HEADERS[only]
    body = EnqueueBatchResult(jobs=batch.jobs, outcomes=batch.outcomes).body()
    return json_response(202 if batch.created else 200, body, headers)


def body_limit() -> int:
    """What the function reads at most: a batch's limit (one job's is checked once read)."""
    return max_batch_body_bytes(get_settings().max_job_data_bytes)


app = endpoint({"POST": enqueue}, max_body_bytes=body_limit)
handler = lambda_handler(app)
