"""Request bodies into models: 415 unless JSON, 400 when malformed, 422 with every field path."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import MalformedRequest, UnsupportedMediaType, ValidationFailed
from shared.web.messages import Request

Model = TypeVar("Model", bound=BaseModel)


def parse_json(
    request: Request, model: type[Model], *, context: Mapping[str, Any] | None = None
) -> Model:
    """Body -> model. `context` reaches the model's validators (limits that depend on settings
    or the time)."""
    # Media types are case-insensitive (RFC 9110, section 8.3.1).
    content_type = (request.header("content-type") or "application/json").split(";")[0]
    content_type = content_type.strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send JSON with Content-Type: application/json, not {content_type}"
        )
    try:
        payload = json.loads(request.body or b"null")
    except ValueError as error:  # also an integer past Python's 4300-digit limit
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedRequest("the body is nested too deeply to parse") from None
    return validate(model, payload, context=context)


def validate(
    model: type[Model], payload: object, *, context: Mapping[str, Any] | None = None
) -> Model:
    try:
        return model.model_validate(payload, context=context)
    except ValidationError as error:
        raise ValidationFailed(
            "the request does not match the schema", errors=_field_errors(error)
        ) from None


def field_error(
    detail: str, field: str, message: str, error_type: str = "value_error"
) -> ValidationFailed:
    """A 422 for one field that a rule outside the schema refused, shaped like schema errors."""
    return ValidationFailed(
        detail, errors=[{"field": field, "message": message, "type": error_type}]
    )


def _field_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": "/".join(str(part) for part in item["loc"]) or "body",
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_url=False, include_input=False)
    ]
