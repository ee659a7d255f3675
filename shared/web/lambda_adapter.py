"""AWS Lambda entry points: Mangum around a function's ASGI app, built on the first event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.web.types import ASGIApp

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(app: ASGIApp) -> LambdaHandler:
    """Mangum is imported and built on the first event (lifespan off): nothing at import."""
    adapter: LambdaHandler | None = None

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal adapter
        if adapter is None:
            from mangum import Mangum  # noqa: PLC0415 - keep cold-start imports lazy
            from mangum.adapter import DEFAULT_TEXT_MIME_TYPES  # noqa: PLC0415

            adapter = Mangum(
                app,  # type: ignore[arg-type]
                lifespan="off",
                text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"],
            )
        return adapter(event, context)

    return handler
