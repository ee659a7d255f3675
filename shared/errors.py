"""The one error hierarchy. Each `AppError` knows its HTTP status and problem `code`;
`shared.web.endpoint` renders them as `application/problem+json` in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class AppError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors or [])


class MalformedRequest(AppError):
    status = 400
    code = "malformed_request"
    title = "Malformed request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Missing or invalid credentials"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"{method} is not supported here; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    title = "Request failed validation"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Rate limit exceeded"


class ServerMisconfigured(AppError):
    status = 500
    code = "server_misconfigured"
    title = "Server misconfigured"


class BadRedisReply(AppError):
    """Redis answered, but not in the shape the code expects (or a script raised)."""

    status = 502
    code = "bad_redis_reply"
    title = "Unexpected reply from Redis"


class RedisCommandError(BadRedisReply):
    """Redis refused a command or a script raised; `message` keeps Redis's own text."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Redis refused the command: {message}")
        self.message = message


class RedisUnavailable(AppError):
    """Upstash could not be reached; nothing was written, or the write is safe to retry."""

    status = 503
    code = "redis_unavailable"
    title = "Storage temporarily unavailable"
    retry_after_s: ClassVar[int] = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_s)})


class RedisTimeout(RedisUnavailable):
    """No answer within `REDIS_TIMEOUT_MS`."""

    code = "redis_timeout"
    title = "Storage did not answer in time"


class AuthProviderUnavailable(AppError):
    """The JWKS endpoint that publishes the token signing keys did not answer."""

    status = 503
    code = "auth_provider_unavailable"
    title = "Token keys temporarily unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})


class PermanentError(Exception):
    """Raised by a job processor: fail the job now, without further attempts."""
