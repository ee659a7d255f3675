"""GET /api/status?id=<id>[&waitMs=<0..25000>][&after=<updatedAt>]: the job, to its owner or a
service key (anyone else: 404, as for an unknown id); with `waitMs`, a long-poll that answers as
soon as the job is final (or, with `after`, changed since then). DELETE: cancel a job that has
not started (200), or ask its worker to stop a running one (202, `cancelRequested`); a finished
job: 409."""

from __future__ import annotations

from shared import clock
from shared.queue.job_ids import is_job_id
from shared.queue.status import cancel_job, get_job, job_not_found
from shared.queue.watch import MAX_WAIT_MS, watch_job
from shared.web.caller import identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response
from shared.web.validation import field_error

MAX_EPOCH_MS = 10**15


async def show(request: Request) -> Response:
    caller = await identify(request)
    job_id = job_id_param(request)
    wait_ms = integer_param(request, "waitMs", 0, MAX_WAIT_MS)
    after = integer_param(request, "after", 0, MAX_EPOCH_MS)
    if wait_ms is None:
        job = await get_job(caller.redis, caller.settings, job_id, caller.viewer_id)
    else:
        job = await watch_job(
            caller.redis, caller.settings, job_id, caller.viewer_id, wait_ms=wait_ms, after=after
        )
    return json_response(200, job.body())


async def cancel(request: Request) -> Response:
    caller = await identify(request)
    job_id = job_id_param(request)
    cancelled = await cancel_job(
        caller.redis, caller.settings, job_id, caller.viewer_id, clock.now_ms()
    )
    return json_response(202 if cancelled.requested else 200, cancelled.job.body())


def job_id_param(request: Request) -> str:
    """`?id=`: 422 when missing; a malformed id is a 404 like an unknown one, without Redis."""
    job_id = request.query.get("id", "")
    if not job_id:
        raise field_error("the job id is missing", "id", "send ?id=<job id>", "missing")
    if not is_job_id(job_id):
        raise job_not_found()
    return job_id


def integer_param(request: Request, name: str, low: int, high: int) -> int | None:
    """An optional integer query parameter within [low, high]: 422 naming it otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise field_error(
            f"the query parameter {name} is not valid",
            name,
            f"must be an integer from {low} to {high}",
        )
    return int(raw)


app = endpoint({"GET": show, "DELETE": cancel})
handler = lambda_handler(app)
