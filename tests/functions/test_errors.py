"""GET /api/errors: the page every problem's `type` links to has a row for every code."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from functions import errors
from shared.web.error_catalogue import error_classes
from shared.web.types import ASGIApp
from tests.support.api import QueueApi


async def test_the_page_has_a_row_for_every_error_code(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
) -> None:
    response = await call_function(errors.app).get("/api/errors")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    rows = set(re.findall(r'<tr id="([a-z_]+)">', response.text))
    assert rows == {error.code for error in error_classes()}
    assert {"validation_failed", "rate_limited", "redis_timeout", "secrets_unavailable"} <= rows


async def test_a_problem_type_links_to_its_row_on_that_page(
    queue_api: QueueApi, call_function: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    problem = (await queue_api.status.get("/api/status?id=x")).json()  # no credentials: 401
    page = (await call_function(errors.app).get("/api/errors")).text

    path, _, anchor = problem["type"].partition("#")
    assert (path, anchor) == ("/api/errors", "unauthorized")
    assert f'<tr id="{anchor}">' in page
