"""GET /api/errors: the page that every problem's `type` links to, one row per error code."""

from __future__ import annotations

from shared.web.endpoint import endpoint
from shared.web.error_catalogue import catalogue_html
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response


async def show(request: Request) -> Response:
    return Response(status=200, body=catalogue_html(), media_type="text/html; charset=utf-8")


app = endpoint({"GET": show})
handler = lambda_handler(app)
