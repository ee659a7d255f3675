"""GET /api/stats: queue counts and worker health, for service keys only."""

from __future__ import annotations

from shared import clock
from shared.queue.stats import queue_stats
from shared.web.caller import identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response


async def show(request: Request) -> Response:
    caller = await identify(request)
    caller.principal.require_service()
    stats = await queue_stats(caller.redis, caller.settings, clock.now_ms())
    return json_response(200, stats.body())


app = endpoint({"GET": show})
handler = lambda_handler(app)
