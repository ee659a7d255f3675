"""GET /api/dashboard: the operator's page (SPEC 11), to anyone. It is one self-contained file,
`shared/web/dashboard/page.html` (inline CSS and JS, no CDN, no build step), holding no data:
this function reads no settings and makes no Upstash request. In the browser the page asks for
a service key once (kept in sessionStorage) and reads everything through the HTTP API
(`stats`, `jobs?status=failed`, `jobs/retry`).

Its Content-Security-Policy allows the page's own inline script and style only (by their
SHA-256, so any other script is refused), requests to its own origin only, and no framing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response

PAGE_RESOURCE = ("shared.web", "dashboard/page.html")
CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True)
class Page:
    html: str
    headers: dict[str, str]


async def show(request: Request) -> Response:
    page = dashboard_page()
    return Response(
        status=200,
        body=page.html,
        headers=dict(page.headers),
        media_type="text/html; charset=utf-8",
    )


@cache
def dashboard_page() -> Page:
    """The page and its headers, read once per process."""
    package, name = PAGE_RESOURCE
    html = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return Page(html=html, headers=page_headers(html))


def page_headers(html: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(html),
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


def content_security_policy(html: str) -> str:
    directives = (
        "default-src 'none'",
        f"script-src {inline_hash(html, 'script')}",
        f"style-src {inline_hash(html, 'style')}",
        "connect-src 'self'",
        "img-src data:",  # the empty favicon only: no request for /favicon.ico
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
    return "; ".join(directives)


def inline_hash(html: str, tag: str) -> str:
    """The CSP source of the page's one inline `<tag>` element."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    if len(blocks) != 1:
        raise ValueError(f"the dashboard page must hold exactly one <{tag}>, found {len(blocks)}")
    digest = hashlib.sha256(blocks[0].encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


app = endpoint({"GET": show})
handler = lambda_handler(app)
