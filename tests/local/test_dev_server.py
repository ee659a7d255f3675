"""The dev server routes `/api/<name>` to each function, and answers anything else with the same
problem+json 404 (and X-Request-Id) as every other error."""

from __future__ import annotations

import httpx
import pytest

from local.dev_server import ROUTES, dev_app


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_an_unknown_path_is_a_problem_404_with_a_request_id(method: str) -> None:
    transport = httpx.ASGITransport(app=dev_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(method, "/api/nope")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"]
    assert response.headers.get_list("cache-control") == ["no-store"]
    body = response.json()
    assert (body["code"], body["type"]) == ("not_found", "/api/errors#not_found")
    assert all(path in body["detail"] for path in ROUTES)
