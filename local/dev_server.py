"""One ASGI app that serves every function under `/api/<name>`, as Vercel and API Gateway do."""

from __future__ import annotations

import importlib

from shared.errors import NotFound
from shared.web.endpoint import endpoint
from shared.web.messages import Request, Response
from shared.web.types import ASGIApp, Receive, Scope, Send

ROUTES = {
    "/api/enqueue": "functions.enqueue",
    "/api/status": "functions.status",
    "/api/stats": "functions.stats",
    "/api/ratelimit-check": "functions.ratelimit_check",
    "/api/jobs": "functions.jobs",
    "/api/jobs/retry": "functions.jobs",
    "/api/jobs/purge": "functions.jobs",
    "/api/dashboard": "functions.dashboard",
    "/api/errors": "functions.errors",
    "/api/openapi.json": "functions.openapi",
    "/api/cron": "functions.cron",
}


def function_app(path: str) -> ASGIApp | None:
    module_name = ROUTES.get(path.rstrip("/"))
    if module_name is None:
        return None
    app: ASGIApp = importlib.import_module(module_name).app
    return app


async def dev_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return
    target = function_app(scope.get("path", ""))
    await (target or _no_such_endpoint_app())(scope, receive, send)


async def _no_such_endpoint(request: Request) -> Response:
    raise NotFound(f"no such endpoint; try one of {', '.join(ROUTES)}")


def _no_such_endpoint_app() -> ASGIApp:
    """A 404 problem like every other error (with its X-Request-Id), whatever the method."""
    methods = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return endpoint(dict.fromkeys(methods, _no_such_endpoint))
