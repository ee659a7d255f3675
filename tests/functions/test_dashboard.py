"""GET /api/dashboard: one self-contained HTML page, to anyone, that costs no Upstash request and
reads no settings; its Content-Security-Policy allows nothing but the page's own inline script
and style and requests to its own origin. (The page at work: tests/browser/test_dashboard.py.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
from collections.abc import Callable

import httpx
import pytest

from functions import dashboard
from local.dev_server import dev_app
from shared.config.settings import get_settings
from shared.web.types import ASGIApp
from tests.support.platform_events import (
    LAMBDA_SOURCES,
    Call,
    lambda_context,
    make_event,
    read_response,
)

SETTINGS_PREFIXES = ("UPSTASH_", "KV_", "AUTH_", "CORS_", "RATELIMIT_", "QUEUE_NAME")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def fetch_page() -> httpx.Response:
    async with client(dashboard.app) as anonymous:
        return await anonymous.get("/api/dashboard")


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    parsed = (directive.split() for directive in directives if directive.strip())
    return {name: sources for name, *sources in parsed}


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def inline(page: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", page, flags=re.DOTALL)


async def test_anyone_gets_the_page_and_no_upstash_request_is_made(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    response = await call_function(dashboard.app).get("/api/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!doctype html>")
    assert 'id="key-form"' in response.text
    assert response.headers["x-request-id"]
    assert gateway_requests() == before


async def test_the_page_is_served_without_any_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    try:
        response = await fetch_page()
    finally:
        get_settings.cache_clear()

    assert response.status_code == 200


async def test_the_policy_allows_only_the_pages_own_script_and_style() -> None:
    response = await fetch_page()
    (script,) = inline(response.text, "script")
    (style,) = inline(response.text, "style")

    assert policy(response) == {
        "default-src": ["'none'"],
        "script-src": [sha256_source(script)],
        "style-src": [sha256_source(style)],
        "connect-src": ["'self'"],
        "img-src": ["data:"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_loads_nothing_from_anywhere_else() -> None:
    page = (await fetch_page()).text

    assert set(re.findall(r"https?://[^\s'\"`)]+", page)) == {SVG_NAMESPACE}
    assert re.findall(r"\b(?:src|href)=\"([^\"]*)\"", page) == ["data:,"]  # the empty favicon
    assert "<script src" not in page
    assert "@import" not in page


async def test_the_page_never_turns_data_into_markup() -> None:
    page = (await fetch_page()).text

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in page
    assert "textContent" in page


async def test_the_page_may_be_cached_for_five_minutes() -> None:
    response = await fetch_page()

    assert response.headers.get_list("cache-control") == ["public, max-age=300"]


async def test_only_get_is_served() -> None:
    async with client(dashboard.app) as anonymous:
        response = await anonymous.post("/api/dashboard", json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_the_dev_server_routes_it() -> None:
    async with client(dev_app) as anonymous:
        response = await anonymous.get("/api/dashboard")

    assert response.status_code == 200
    assert response.text == (await fetch_page()).text


@pytest.mark.parametrize("source", LAMBDA_SOURCES)
def test_the_lambda_handler_serves_the_page_with_its_policy(source: str) -> None:
    asyncio.set_event_loop(loop := asyncio.new_event_loop())
    try:
        raw = dashboard.handler(make_event(source, Call("GET", "/api/dashboard")), lambda_context())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    response = read_response(source, raw)

    assert response.status == 200
    assert response.body.decode().startswith("<!doctype html>")
    assert (response.header("Content-Security-Policy") or "").startswith("default-src 'none'")
    assert not raw.get("isBase64Encoded")
