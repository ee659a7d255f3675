"""GET /api/stats: queue counts and worker health, for service keys only."""

from __future__ import annotations

from shared import clock
from shared.handlers import identify
from shared.http import Request, Response, endpoint, json_response, lambda_handler
from shared.queue import queue_stats


async def show(request: Request) -> Response:
    caller = await identify(request)
    caller.principal.require_service()
    stats = await queue_stats(caller.redis, caller.settings, clock.now_ms())
    return json_response(200, stats.body())


app = endpoint({"GET": show})
handler = lambda_handler(app)
