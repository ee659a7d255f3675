"""The one error hierarchy. Each `AppError` knows its HTTP status and problem `code`;
`shared.web.problems` renders them as `application/problem+json` in one place.

    AppError                      500 internal_error
    ├── MalformedRequest          400 malformed_request
    ├── Unauthorized              401 unauthorized (with WWW-Authenticate)
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── MethodNotAllowed          405 method_not_allowed (with Allow)
    ├── Conflict                  409 conflict
    ├── PayloadTooLarge           413 payload_too_large
    ├── UnsupportedMediaType      415 unsupported_media_type
    ├── ValidationFailed          422 validation_failed (with errors[])
    ├── IdempotencyKeyReused      422 idempotency_key_reused
    ├── RateLimited               429 rate_limited (with the rate-limit headers)
    ├── ServerMisconfigured       500 server_misconfigured
    ├── BadRedisReply             502 bad_redis_reply
    │   └── RedisCommandError     502 bad_redis_reply (Redis's own message kept)
    └── RetryLater                503, with Retry-After: the cause passes
        ├── RedisUnavailable      503 redis_unavailable
        │   └── RedisTimeout      503 redis_timeout
        ├── AuthProviderUnavailable  503 auth_provider_unavailable
        └── SecretsUnavailable    503 secrets_unavailable (shared.config.parameter_store)

`PermanentError` is not an `AppError`: a job processor raises it to fail a job at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class AppError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, title: str | None = None
    ) -> None:
        super().__init_subclass__()
        cls.status = status or cls.status
        cls.code = code or cls.code
        cls.title = title or cls.title

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


class MalformedRequest(AppError, status=400, code="malformed_request", title="Malformed request"):
    pass


class Unauthorized(
    AppError, status=401, code="unauthorized", title="Missing or invalid credentials"
):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Forbidden(AppError, status=403, code="forbidden", title="Not allowed"):
    pass


class NotFound(AppError, status=404, code="not_found", title="Not found"):
    pass


class MethodNotAllowed(AppError, status=405, code="method_not_allowed", title="Method not allowed"):
    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"{method} is not supported here; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


class Conflict(AppError, status=409, code="conflict", title="Conflict with the current state"):
    pass


class PayloadTooLarge(AppError, status=413, code="payload_too_large", title="Payload too large"):
    pass


class UnsupportedMediaType(
    AppError, status=415, code="unsupported_media_type", title="Unsupported media type"
):
    pass


class ValidationFailed(
    AppError, status=422, code="validation_failed", title="Request failed validation"
):
    pass


class IdempotencyKeyReused(
    AppError,
    status=422,
    code="idempotency_key_reused",
    title="Idempotency key reused with a different request",
):
    """A known idempotency key came with another request: as Stripe and the IETF
    Idempotency-Key draft answer it (the same request replays the original job instead)."""


class RateLimited(AppError, status=429, code="rate_limited", title="Rate limit exceeded"):
    pass


class ServerMisconfigured(
    AppError, status=500, code="server_misconfigured", title="Server misconfigured"
):
    pass


class BadRedisReply(
    AppError, status=502, code="bad_redis_reply", title="Unexpected reply from Redis"
):
    """Redis answered, but not in the shape the code expects (or a script raised)."""


class RedisCommandError(BadRedisReply):
    """Redis refused a command or a script raised; `message` keeps Redis's own text."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Redis refused the command: {message}")
        self.message = message


class RetryLater(AppError):
    """A 503 whose cause passes: `Retry-After` says when to try again."""

    retry_after_s: ClassVar[int] = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_s)})


class RedisUnavailable(
    RetryLater, status=503, code="redis_unavailable", title="Storage temporarily unavailable"
):
    """Upstash could not be reached; nothing was written, or the write is safe to retry."""


class RedisTimeout(RedisUnavailable, code="redis_timeout", title="Storage did not answer in time"):
    """No answer within `REDIS_TIMEOUT_MS`."""


class AuthProviderUnavailable(
    RetryLater,
    status=503,
    code="auth_provider_unavailable",
    title="Token keys temporarily unavailable",
):
    """The JWKS endpoint that publishes the token signing keys did not answer."""

    retry_after_s = 5


class PermanentError(Exception):
    """Raised by a job processor: fail the job now, without further attempts."""
