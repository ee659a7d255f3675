"""GET /api/status?id=<id>: the job, to its owner or a service key (anyone else: 404, as for
an unknown id). DELETE: cancel a job that has not started (200), else 409."""

from __future__ import annotations

from shared import clock
from shared.queue.job_ids import is_job_id
from shared.queue.status import cancel_job, get_job, job_not_found
from shared.web.caller import identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response
from shared.web.validation import field_error


async def show(request: Request) -> Response:
    caller = await identify(request)
    job_id = job_id_param(request)
    job = await get_job(caller.redis, caller.settings, job_id, caller.viewer_id)
    return json_response(200, job.body())


async def cancel(request: Request) -> Response:
    caller = await identify(request)
    job_id = job_id_param(request)
    job = await cancel_job(caller.redis, caller.settings, job_id, caller.viewer_id, clock.now_ms())
    return json_response(200, job.body())


def job_id_param(request: Request) -> str:
    """`?id=`: 422 when missing; a malformed id is a 404 like an unknown one, without Redis."""
    job_id = request.query.get("id", "")
    if not job_id:
        raise field_error("the job id is missing", "id", "send ?id=<job id>", "missing")
    if not is_job_id(job_id):
        raise job_not_found()
    return job_id


app = endpoint({"GET": show, "DELETE": cancel})
handler = lambda_handler(app)
