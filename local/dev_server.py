"""One ASGI app that serves every function under `/api/<name>`, as Vercel and API Gateway do."""

from __future__ import annotations

import importlib
import json

from shared.web.types import ASGIApp, Receive, Scope, Send

ROUTES = {
    "/api/enqueue": "functions.enqueue",
    "/api/status": "functions.status",
    "/api/stats": "functions.stats",
    "/api/ratelimit-check": "functions.ratelimit_check",
    "/api/errors": "functions.errors",
    "/api/openapi.json": "functions.openapi",
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
    if target is None:
        await _not_found(send)
        return
    await target(scope, receive, send)


async def _not_found(send: Send) -> None:
    body = json.dumps(
        {
            "type": "/api/errors#not_found",
            "title": "Not found",
            "status": 404,
            "detail": f"no such endpoint; try one of {', '.join(ROUTES)}",
            "code": "not_found",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/problem+json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
