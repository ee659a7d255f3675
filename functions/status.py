"""GET /api/status?id=<id>: the job, to its owner or a service key (anyone else: 404, as for
an unknown id). DELETE: cancel a job that has not started (200), else 409."""

from __future__ import annotations

from shared import clock
from shared.queue.enqueue import cancel_job, get_job
from shared.web.caller import identify, job_id_param
from shared.web.endpoint import Request, Response, endpoint, json_response, lambda_handler


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


app = endpoint({"GET": show, "DELETE": cancel})
handler = lambda_handler(app)
