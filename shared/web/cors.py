"""CORS for browsers on the origins `CORS_ALLOW_ORIGINS` lists (SPEC section 10).

With the list empty nothing here adds a header, and an `OPTIONS` is a 405 like any other method
the function does not serve. With origins listed, a preflight (`OPTIONS` with `Origin` and
`Access-Control-Request-Method`) is answered here, before any handler, without credentials and
without Redis: a 204 for a listed origin, a 403 problem without CORS headers for another (the
browser refuses the call and its network panel says why). Every other response to a listed
origin lets the page read it, errors included (a 401 or a 429 must reach the page), and a
response a cache may keep says `Vary: Origin` whoever asked.

The list comes from the cached `get_settings()`, read only for a request with an `Origin` or a
cacheable response: a preflight makes no Upstash request, and a call from curl or a server to
a `no-store` endpoint never looks at it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.config.settings import get_settings
from shared.errors import AppError, Forbidden
from shared.web.messages import Response

PREFLIGHT_MAX_AGE_S = 600
ALLOWED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
EXPOSED_RESPONSE_HEADERS = (
    "Location",
    "X-Request-Id",
    "Retry-After",
    "Idempotent-Replayed",
    "Job-Cache",
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
_DEFAULT_PORTS = (("http://", ":80"), ("https://", ":443"))


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """A browser asking before its request, with CORS on (else the `OPTIONS` is served, or
    refused with a 405, like any other method)."""
    return (
        method == "OPTIONS"
        and "origin" in headers
        and "access-control-request-method" in headers
        and bool(_listed_origins())
    )


def preflight_response(headers: Mapping[str, str], methods: Sequence[str]) -> Response:
    """The 204 that lets a listed origin send its request: the browser checks the method and the
    headers it asks for against these lists. Another origin gets a 403 without CORS headers."""
    origin = headers["origin"]
    if _normalized(origin) not in _listed_origins():
        raise Forbidden(f"the origin {origin} may not call this API from a browser")
    return Response(
        status=204,
        headers={
            **_origin_headers(origin),
            "Vary": "Origin",
            "Access-Control-Allow-Methods": ", ".join(
                name for name in methods if name != "OPTIONS"
            ),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_REQUEST_HEADERS),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        },
    )


def allow_listed_origin(response: Response, headers: Mapping[str, str]) -> None:
    """Let a listed origin's page read `response` and the headers it needs; with CORS on, add
    `Vary: Origin` to a response to any browser or one a cache may keep. A preflight's
    response (it has its CORS headers already) is kept as it is."""
    origin = headers.get("origin")
    if "Access-Control-Allow-Origin" in response.headers:
        return
    if origin is None and not _storable(response):
        return  # nothing to allow, nothing a cache could serve to a browser later
    try:
        listed = _listed_origins()
    except AppError:
        return  # settings that do not load: the response says so already, or did not need them
    if not listed:
        return
    _vary_on_origin(response)
    if origin is not None and _normalized(origin) in listed:
        response.headers.update(_origin_headers(origin))
        response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_RESPONSE_HEADERS)


def _origin_headers(origin: str) -> dict[str, str]:
    """The origin exactly as the browser sent it (it compares byte for byte), never `*`: the
    calls carry credentials."""
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}


def _storable(response: Response) -> bool:
    return "no-store" not in response.headers.get("Cache-Control", "no-store")


def _vary_on_origin(response: Response) -> None:
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"


def _listed_origins() -> frozenset[str]:
    return frozenset(_normalized(origin) for origin in get_settings().cors_allow_origins)


def _normalized(origin: str) -> str:
    """Scheme and host in lower case and the default port left out, as browsers send them:
    `https://App.example.com:443` lists the origin `https://app.example.com`."""
    lowered = origin.lower()
    for scheme, default_port in _DEFAULT_PORTS:
        if lowered.startswith(scheme):
            return lowered.removesuffix(default_port)
    return lowered
