"""GET /api/openapi.json: the OpenAPI 3.1 document of every endpoint, to anyone (no credentials:
it says nothing a caller could not learn from the errors)."""

from __future__ import annotations

from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response
from shared.web.openapi import openapi_json


async def show(request: Request) -> Response:
    return Response(
        status=200,
        body=openapi_json(),
        headers={"Cache-Control": "public, max-age=300"},
        media_type="application/json",
    )


app = endpoint({"GET": show})
handler = lambda_handler(app)
