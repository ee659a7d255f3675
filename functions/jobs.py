"""The operator's view of the queue, for service keys only (users: 403):

- `GET /api/jobs?status=&limit=1..200&cursor=&type=&userId=`: jobs of one status, newest
  first, a page at a time (`nextCursor`; two Upstash requests, `shared.queue.listing`);
- `POST /api/jobs/retry` `{"ids": [...]}` or `{"status": "failed"|"cancelled", "limit"}`:
  failed or cancelled jobs back to pending, attempts reset (`shared.queue.retry`);
- `POST /api/jobs/purge` `{"status", "olderThanS", "limit"}`: finished jobs deleted before their
  retention ends (`shared.queue.purge`).

One module serves the three paths (one deployed function, as `status` serves GET and DELETE):
it picks the endpoint by the path's last segment, so stage prefixes do not matter.
"""

from __future__ import annotations

from shared import clock
from shared.queue.listing import JobListQuery, list_jobs
from shared.web.caller import Caller, identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response
from shared.web.types import Receive, Scope, Send
from shared.web.validation import parse_json, validate


async def service_caller(request: Request) -> Caller:
    caller = await identify(request)
    caller.principal.require_service()
    return caller


async def list_page(request: Request) -> Response:
    caller = await service_caller(request)
    query = validate(JobListQuery, request.query)
    page = await list_jobs(caller.redis, caller.settings, query)
    return json_response(200, page.body())


async def retry(request: Request) -> Response:
    # Imported by the action that needs it: a cold start on the list page skips it.
    from shared.queue.retry import (  # noqa: PLC0415
        DEFAULT_BATCH,
        RetryRequest,
        retry_by_status,
        retry_jobs,
    )

    caller = await service_caller(request)
    body = parse_json(request, RetryRequest)
    now_ms = clock.now_ms()
    if body.status is not None:
        limit = body.limit or DEFAULT_BATCH
        result = await retry_by_status(caller.redis, caller.settings, body.status, now_ms, limit)
    else:  # the model takes either status or ids
        result = await retry_jobs(caller.redis, caller.settings, body.ids or [], now_ms)
    return json_response(200, result.body())


async def purge(request: Request) -> Response:
    from shared.queue.purge import PurgeRequest, cutoff_ms, purge_jobs  # noqa: PLC0415 (as retry)

    caller = await service_caller(request)
    body = parse_json(request, PurgeRequest)
    cutoff = cutoff_ms(clock.now_ms(), body.older_than_s)
    result = await purge_jobs(caller.redis, caller.settings, body.status, cutoff, body.limit)
    return json_response(200, result.body())


list_app = endpoint({"GET": list_page})
retry_app = endpoint({"POST": retry})
purge_app = endpoint({"POST": purge})
ACTIONS = {"retry": retry_app, "purge": purge_app}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    last_segment = str(scope.get("path", "")).rstrip("/").rpartition("/")[2]
    await ACTIONS.get(last_segment, list_app)(scope, receive, send)


handler = lambda_handler(app)
