from __future__ import annotations

import json

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import Conflict
from shared.web.endpoint import endpoint
from shared.web.messages import Request, Response, json_response
from shared.web.validation import parse_json


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=10)
    times: int = Field(ge=1, le=3)


async def greet(request: Request) -> Response:
    body = parse_json(request, Greeting)
    return json_response(200, {"text": " ".join([f"hi {body.name}"] * body.times)})


async def refuse(_request: Request) -> Response:
    raise Conflict("already done", headers={"X-Extra": "1"})


async def crash(_request: Request) -> Response:
    raise RuntimeError("a bug")


def client_for(*handlers: tuple[str, object], max_body_bytes: int = 1024) -> httpx.AsyncClient:
    app = endpoint(dict(handlers), max_body_bytes=max_body_bytes)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_valid_body_reaches_the_handler() -> None:
    async with client_for(("POST", greet)) as client:
        response = await client.post("/api/greet", json={"name": "ada", "times": 2})

    assert response.status_code == 200
    assert response.json() == {"text": "hi ada hi ada"}


async def test_every_response_carries_a_request_id_and_echoes_a_valid_one() -> None:
    async with client_for(("POST", greet)) as client:
        generated = await client.post("/", json={"name": "a", "times": 1})
        echoed = await client.post("/", json={}, headers={"X-Request-Id": "req-42"})

    assert len(generated.headers["x-request-id"]) == 32
    assert echoed.headers["x-request-id"] == "req-42"
    assert echoed.json()["requestId"] == "req-42"


async def test_the_path_is_ignored_so_stage_prefixes_work() -> None:
    async with client_for(("POST", greet)) as client:
        response = await client.post("/prod/api/greet", json={"name": "a", "times": 1})

    assert response.status_code == 200


async def test_malformed_json_is_a_400_problem() -> None:
    async with client_for(("POST", greet)) as client:
        response = await client.post(
            "/", content=b"{not json", headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert (problem["status"], problem["code"]) == (400, "malformed_request")


async def test_schema_violations_are_a_422_listing_every_field_path() -> None:
    async with client_for(("POST", greet)) as client:
        response = await client.post("/", json={"name": "", "times": 9, "extra": True})

    assert response.status_code == 422
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == ["extra", "name", "times"]


async def test_a_body_over_the_limit_is_a_413() -> None:
    async with client_for(("POST", greet), max_body_bytes=64) as client:
        response = await client.post("/", content=b"x" * 65)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_non_json_content_type_is_a_415() -> None:
    async with client_for(("POST", greet)) as client:
        response = await client.post("/", content=b"name=a", headers={"Content-Type": "text/plain"})

    assert response.status_code == 415


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_an_unsupported_method_is_a_405_with_allow(method: str) -> None:
    async with client_for(("POST", greet)) as client:
        response = await client.request(method, "/")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_app_errors_render_with_their_status_and_headers() -> None:
    async with client_for(("DELETE", refuse)) as client:
        response = await client.delete("/")

    assert response.status_code == 409
    assert response.headers["x-extra"] == "1"
    assert response.json()["detail"] == "already done"


async def test_an_unexpected_exception_is_a_500_problem_without_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client_for(("GET", crash)) as client:
        response = await client.get("/")

    assert response.status_code == 500
    assert "a bug" not in json.dumps(response.json())
    assert "a bug" in caplog.text
