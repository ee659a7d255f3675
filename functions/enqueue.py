"""POST /api/enqueue: validate, rate-limit and create a job in one Upstash request.

202 + Location for a new job; 200 + `Idempotent-Replayed: true` with the original job when the
idempotency key is known; 429 when a rate limit denies (nothing consumed, no job).
"""

from __future__ import annotations

from shared import clock
from shared.queue.enqueue import enqueue_job
from shared.queue.models import EnqueueRequest, enqueue_context
from shared.ratelimit import decision as ratelimit
from shared.web.caller import (
    enqueue_body_limit,
    enqueue_checks,
    enqueue_response,
    identify,
    new_job,
    rate_limited,
)
from shared.web.endpoint import Request, Response, endpoint, lambda_handler, parse_json


async def enqueue(request: Request) -> Response:
    caller = await identify(request)
    now_ms = clock.now_ms()
    context = enqueue_context(caller.settings.max_job_data_bytes, now_ms)
    job = new_job(caller, request, parse_json(request, EnqueueRequest, context=context), now_ms)
    checks = enqueue_checks(caller, request, job)
    # The one place a cached block may deny before Redis (zero requests to Upstash).
    if (blocked := ratelimit.blocked_decision(checks, now_ms)) is not None:
        raise rate_limited(blocked)
    outcome = await enqueue_job(caller.redis, caller.settings, job, checks)
    ratelimit.remember(outcome.decision)
    return enqueue_response(outcome)


app = endpoint({"POST": enqueue}, max_body_bytes=enqueue_body_limit)
handler = lambda_handler(app)
