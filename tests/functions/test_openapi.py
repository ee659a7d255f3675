"""GET /api/openapi.json: the OpenAPI document, to anyone, as JSON, on the dev server and Lambda."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from functions import openapi
from local.dev_server import dev_app
from shared.web.openapi import openapi_document
from shared.web.types import ASGIApp
from tests.support.platform_events import (
    LAMBDA_SOURCES,
    Call,
    lambda_context,
    make_event,
    read_response,
)


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_anyone_gets_the_document_without_credentials() -> None:
    async with client(openapi.app) as anonymous:
        response = await anonymous.get("/api/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()
    assert response.headers["x-request-id"]
    assert response.headers.get_list("cache-control") == ["public, max-age=300"]


async def test_the_dev_server_routes_it_like_every_platform() -> None:
    async with client(dev_app) as anonymous:
        response = await anonymous.get("/api/openapi.json")

    assert response.status_code == 200
    assert response.json()["paths"].keys() >= {"/api/enqueue", "/api/openapi.json"}


async def test_only_get_is_served() -> None:
    async with client(openapi.app) as anonymous:
        response = await anonymous.post("/api/openapi.json", json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("source", LAMBDA_SOURCES)
def test_the_lambda_handler_serves_it_as_text(source: str) -> None:
    asyncio.set_event_loop(loop := asyncio.new_event_loop())
    try:
        raw = openapi.handler(
            make_event(source, Call("GET", "/api/openapi.json")), lambda_context()
        )
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    response = read_response(source, raw)

    assert response.status == 200
    assert response.json() == openapi_document()
    assert not raw.get("isBase64Encoded")
