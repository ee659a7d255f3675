"""The one place where an `AppError` becomes an `application/problem+json` response."""

from __future__ import annotations

from typing import Any

from shared.errors import AppError
from shared.web.error_catalogue import problem_type
from shared.web.messages import Response


def problem_response(error: AppError, request_id: str) -> Response:
    body: dict[str, Any] = {
        "type": problem_type(error.code),
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "requestId": request_id,
    }
    if error.errors:
        body["errors"] = error.errors
    return Response(
        status=error.status,
        body=body,
        headers=dict(error.headers),
        media_type="application/problem+json",
    )
