"""Who is calling: an end user (a JWT whose `sub` is the user id) or a trusted service key.

Service keys are configured as SHA-256 digests (`AUTH_API_KEYS`) and compared in constant
time. JWTs are HS256 with `AUTH_JWT_SECRET`, or RS256/ES256 with keys from `AUTH_JWKS_URL`
(fetched once and cached per warm instance). With no auth configured at all every request is
refused with `server_misconfigured`: never an open door.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.config.settings import Settings
from shared.errors import AuthProviderUnavailable, Forbidden, ServerMisconfigured, Unauthorized
from shared.web.messages import Request

if TYPE_CHECKING:
    import jwt

JWKS_TIMEOUT_S = 2
JWKS_CACHE_S = 600
ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
CLOCK_LEEWAY_S = 30


@dataclass(frozen=True)
class Principal:
    """`user_id` is the acting user; `None` for a service key not acting for anyone yet."""

    user_id: str | None
    is_service: bool

    def require_service(self) -> None:
        if not self.is_service:
            raise Forbidden("this endpoint needs a service key")

    def acting_user(self, requested: str | None) -> str | None:
        """Users act as their token's `sub`; only a service key may name another user."""
        if self.is_service:
            return requested
        if requested is not None and requested != self.user_id:
            raise Forbidden("userId may only be set with a service key; users act as themselves")
        return self.user_id


async def authenticate(settings: Settings, request: Request) -> Principal:
    if not settings.auth_configured:
        raise ServerMisconfigured(
            "no authentication is configured: set AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_API_KEYS"
        )
    credential = _credential(request)
    if _is_service_key(settings, credential):
        return Principal(user_id=None, is_service=True)
    if not (settings.auth_jwt_secret or settings.auth_jwks_url):
        raise Unauthorized("the API key is not valid")
    claims = await _decode_jwt(settings, credential)
    return Principal(user_id=_user_id(claims), is_service=False)


def _credential(request: Request) -> str:
    api_key = request.header("x-api-key")
    if api_key:
        return api_key.strip()
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("send credentials as 'Authorization: Bearer <token>'")
    return value.strip()


def _is_service_key(settings: Settings, credential: str) -> bool:
    digest = hashlib.sha256(credential.encode()).hexdigest()
    matches = [hmac.compare_digest(digest, known) for known in settings.auth_api_keys]
    return any(matches)


async def _decode_jwt(settings: Settings, token: str) -> dict[str, Any]:
    import jwt  # noqa: PLC0415 - cold start: PyJWT loads cryptography, a service key needs neither

    try:
        key, algorithms = await _verification_key(settings, token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.auth_jwt_audience,
            issuer=settings.auth_jwt_issuer,
            leeway=CLOCK_LEEWAY_S,
            options={"require": ["sub", "exp"], "verify_aud": bool(settings.auth_jwt_audience)},
        )
    except jwt.PyJWKClientConnectionError as error:
        raise AuthProviderUnavailable(f"could not fetch AUTH_JWKS_URL: {error}") from None
    except jwt.InvalidAlgorithmError as error:
        if not settings.auth_jwks_url:  # the secret was tried: the token is not HS256
            raise Unauthorized("the token must be signed with HS256") from None
        raise Unauthorized(f"the token is not valid: {error}") from None
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as error:
        raise Unauthorized(f"the token is not valid: {error}") from None
    return claims


async def _verification_key(settings: Settings, token: str) -> tuple[Any, list[str]]:
    import jwt  # noqa: PLC0415 - cold start, as in _decode_jwt

    if settings.auth_jwt_secret and (
        # The header is read here only to choose between the secret and the JWKS: with the
        # secret alone, `jwt.decode` refuses any other algorithm itself (one parse, not two).
        not settings.auth_jwks_url or jwt.get_unverified_header(token).get("alg") == "HS256"
    ):
        return settings.auth_jwt_secret, ["HS256"]
    if settings.auth_jwks_url:
        client = _jwks_client(settings.auth_jwks_url)
        signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        return signing_key.key, ASYMMETRIC_ALGORITHMS
    raise Unauthorized("the token must be signed with HS256")


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    import jwt  # noqa: PLC0415 - cold start, as in _decode_jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S)


def _user_id(claims: dict[str, Any]) -> str:
    # Cold start: the job models are for tokens' users only; ratelimit-check never loads them.
    from shared.queue.models import MAX_USER_ID_CHARS  # noqa: PLC0415

    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_USER_ID_CHARS:
        raise Unauthorized(f"the token's sub must be a string of 1-{MAX_USER_ID_CHARS} characters")
    if not subject.isprintable() or not _is_utf8(subject):
        raise Unauthorized("the token's sub must be printable text (no control characters)")
    return subject


def _is_utf8(text: str) -> bool:
    """False for a lone surrogate (valid JSON, but no UTF-8 can carry it to Upstash)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
