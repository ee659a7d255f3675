"""Steps the queue functions share (enqueue, status, stats), so each handler reads as: parse,
authenticate, act (one Redis round trip), respond. Everything here runs before Redis is
called, and every refusal here costs zero requests to Upstash.
"""

from __future__ import annotations

from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings, get_settings
from shared.errors import Forbidden, RateLimited
from shared.queue.enqueue import EnqueueOutcome, NewJob, job_not_found
from shared.queue.job_ids import idempotent_job_id, is_job_id, new_job_id
from shared.queue.models import EnqueueRequest, is_idempotency_key
from shared.ratelimit import decision as ratelimit
from shared.ratelimit.decision import Decision, RateLimitCheck
from shared.store.client import get_redis
from shared.web.auth import Principal, authenticate
from shared.web.client_ip import client_ip
from shared.web.endpoint import Request, Response, field_error, json_response

# JSON escapes (\u00e9 is 6 bytes for 2) and indentation can make a valid body several times
# larger than its compact `data`; the exact limit is checked on `data` itself (422).
ENQUEUE_BODY_FACTOR = 4
ENQUEUE_ENVELOPE_BYTES = 16_384


@dataclass(frozen=True)
class Caller:
    settings: Settings
    principal: Principal

    @property
    def redis(self) -> Redis:
        return get_redis(self.settings)

    @property
    def viewer_id(self) -> str | None:
        """Whose jobs the caller may see: its own user id; None (all jobs) for a service key."""
        return None if self.principal.is_service else self.principal.user_id


async def identify(request: Request) -> Caller:
    settings = get_settings()
    return Caller(settings=settings, principal=await authenticate(settings, request))


def enqueue_body_limit() -> int:
    return ENQUEUE_BODY_FACTOR * get_settings().max_job_data_bytes + ENQUEUE_ENVELOPE_BYTES


def job_id_param(request: Request) -> str:
    """`?id=`: 422 when missing; a malformed id is a 404 like an unknown one, without Redis."""
    job_id = request.query.get("id", "")
    if not job_id:
        raise field_error("the job id is missing", "id", "send ?id=<job id>", "missing")
    if not is_job_id(job_id):
        raise job_not_found()
    return job_id


def new_job(caller: Caller, request: Request, body: EnqueueRequest, now_ms: int) -> NewJob:
    user_id = _acting_user(caller.principal, body.user_id)
    key = _idempotency_key(request, body)
    job_id = new_job_id(now_ms) if key is None else idempotent_job_id(user_id or "", key)
    return NewJob(
        id=job_id, request=body, user_id=user_id, idempotency_key=key, created_at_ms=now_ms
    )


def _acting_user(principal: Principal, requested: str | None) -> str | None:
    """Users act as their token's `sub`; only a service key may name another user."""
    if principal.is_service:
        return requested
    if requested is not None and requested != principal.user_id:
        raise Forbidden("userId may only be set with a service key; users act as themselves")
    return principal.user_id


def _idempotency_key(request: Request, body: EnqueueRequest) -> str | None:
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


def enqueue_checks(caller: Caller, request: Request, job: NewJob) -> list[RateLimitCheck]:
    """The user's policies, and the IP's for end users only: a trusted back end's own address
    must not be limited as if it were one user's."""
    ip = None if caller.principal.is_service else client_ip(caller.settings, request)
    return ratelimit.checks_for_enqueue(caller.settings, job.user_id or "", ip)


def rate_limited(decision: Decision) -> RateLimited:
    denied = [item.check.label for item in decision.policies if not item.allowed]
    return RateLimited(
        f"over the rate limit ({', '.join(denied) or 'a policy'}); "
        f"retry after {decision.retry_after_s} s",
        headers=ratelimit.decision_headers(decision),
    )


def enqueue_response(outcome: EnqueueOutcome) -> Response:
    if outcome.job is None:
        raise rate_limited(outcome.decision)
    headers = {
        **ratelimit.decision_headers(outcome.decision),
        "Location": f"/api/status?id={outcome.job.id}",
    }
    if outcome.replayed:
        return json_response(200, outcome.job.body(), {**headers, "Idempotent-Replayed": "true"})
    return json_response(202, outcome.job.body(), headers)
