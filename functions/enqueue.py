"""POST /api/enqueue: validate, rate-limit and create a job in one Upstash request.

202 + Location for a new job; 200 + `Idempotent-Replayed: true` with the original job when the
idempotency key is known; 429 when a rate limit denies (nothing consumed, no job).
"""

from __future__ import annotations

from shared import clock
from shared.config.settings import get_settings
from shared.queue.enqueue import Enqueued, enqueue_job
from shared.queue.models import (
    EnqueueRequest,
    enqueue_context,
    is_idempotency_key,
    max_enqueue_body_bytes,
)
from shared.queue.new_job import NewJob, new_job
from shared.ratelimit.checks import checks_for_enqueue
from shared.web.caller import Caller, identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response
from shared.web.validation import field_error, parse_json
from shared.webhooks.targets import check_callback_url


async def enqueue(request: Request) -> Response:
    caller = await identify(request)
    job = parse_new_job(caller, request)
    checks = checks_for_enqueue(caller.settings, job.user_id or "", caller.limited_ip)
    enqueued = await enqueue_job(caller.redis, caller.settings, job, checks)
    return enqueued_response(enqueued)


def parse_new_job(caller: Caller, request: Request) -> NewJob:
    now_ms = clock.now_ms()
    context = enqueue_context(caller.settings.max_job_data_bytes, now_ms)
    body = parse_json(request, EnqueueRequest, context=context)
    user_id = caller.principal.acting_user(body.user_id)
    if body.callback_url is not None:
        check_callback_url(body.callback_url, caller.principal, caller.settings)
    return new_job(body, user_id, idempotency_key(request, body), now_ms)


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


def enqueued_response(enqueued: Enqueued) -> Response:
    if enqueued.job is None:
        raise enqueued.decision.refusal()
    headers = {**enqueued.decision.headers(), "Location": f"/api/status?id={enqueued.job.id}"}
    if enqueued.replayed:
        return json_response(200, enqueued.job.body(), {**headers, "Idempotent-Replayed": "true"})
    return json_response(202, enqueued.job.body(), headers)


def body_limit() -> int:
    return max_enqueue_body_bytes(get_settings().max_job_data_bytes)


app = endpoint({"POST": enqueue}, max_body_bytes=body_limit)
handler = lambda_handler(app)
