"""The OpenAPI document: valid OpenAPI 3.1, committed as openapi.json without drift, covering every
routed endpoint and method, with the hand-rendered bodies held to the models it describes."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis

from local.dev_server import ROUTES
from shared.errors import (
    AppError,
    Conflict,
    IdempotencyKeyReused,
    MethodNotAllowed,
    RateLimited,
    Unauthorized,
)
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision, PolicyDecision, Reason
from shared.ratelimit.models import decision_body
from shared.ratelimit.policies import Algorithm, Policy
from shared.web.error_catalogue import error_classes
from shared.web.openapi import openapi_document, openapi_json
from shared.web.problems import problem_response
from shared.web.response_models import Decision as DecisionModel
from shared.web.response_models import Problem
from shared.web.validation import field_error

ROOT = Path(__file__).resolve().parents[3]
METHODS = ("get", "put", "post", "delete", "patch")


def test_the_committed_openapi_json_is_the_generated_document() -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())

    assert committed == openapi_document(), "openapi.json is stale: run `make openapi`"


def test_the_committed_file_is_byte_for_byte_what_make_openapi_writes() -> None:
    assert (ROOT / "openapi.json").read_text() == openapi_json(), "run `make openapi`"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()

    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    assert document["openapi"].startswith("3.1.")


def test_every_reference_resolves() -> None:
    text = json.dumps(openapi_document())
    components = openapi_document()["components"]

    for kind, name in re.findall(r'"#/components/(\w+)/([^"]+)"', text):
        assert name in components[kind], f"#/components/{kind}/{name}"


def test_every_routed_path_is_documented_on_every_platform() -> None:
    documented = set(openapi_document()["paths"])
    vercel = {route["src"] for route in json.loads((ROOT / "vercel.json").read_text())["routes"]}
    lambda_paths = set(re.findall(r"path: (/api/\S+) }", (ROOT / "serverless.yml").read_text()))

    assert documented == set(ROUTES) == vercel == lambda_paths


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_each_path_documents_exactly_the_methods_its_function_serves(path: str) -> None:
    app = importlib.import_module(ROUTES[path]).app
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        refused = await client.request("PATCH", path)
    operations = openapi_document()["paths"][path]

    assert refused.status_code == 405
    assert refused.headers["allow"].lower().split(", ") == sorted(
        method for method in operations if method in METHODS
    )


def test_bodies_are_camel_case_as_on_the_wire() -> None:
    schemas = openapi_document()["components"]["schemas"]

    assert {"delayMs", "runAt", "maxAttempts", "idempotencyKey"} <= set(
        schemas["EnqueueRequest"]["properties"]
    )
    assert schemas["EnqueueRequest"]["additionalProperties"] is False
    assert {"createdAt", "finishedAt", "maxAttempts"} <= set(schemas["JobView"]["required"])
    assert "oldestPendingAgeMs" in schemas["QueueStats"]["required"]
    fields = [
        field for schema in schemas.values() for field in schema.get("properties", {}).values()
    ]
    assert not any("title" in field for field in fields)


def test_only_the_pages_and_the_document_need_no_credentials() -> None:
    paths = openapi_document()["paths"]
    public = {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("security") == []
    }

    assert public == {"GET /api/dashboard", "GET /api/errors", "GET /api/openapi.json"}
    assert openapi_document()["security"] == [{"bearer": []}, {"apiKey": []}]


def test_every_error_code_is_documented_under_its_status() -> None:
    responses = openapi_document()["components"]["responses"]

    for error in error_classes():
        schema = responses[str(error.status)]["content"]["application/problem+json"]["schema"]
        constraints = schema["allOf"][1]["properties"]
        assert constraints["status"] == {"const": error.status}
        assert error.code in constraints["code"]["enum"]


def test_a_retry_later_error_and_a_denial_always_document_retry_after() -> None:
    responses = openapi_document()["components"]["responses"]

    for status in ("429", "503"):
        assert responses[status]["headers"]["Retry-After"]["required"] is True
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True


@pytest.mark.parametrize(
    "error",
    [
        field_error("the request does not match the schema", "data", "is too deep", "too_deep"),
        Unauthorized("send credentials"),
        MethodNotAllowed("PUT", ["GET", "DELETE"]),
        Conflict("the job already finished"),
        IdempotencyKeyReused("a different request"),
        RateLimited("over the limit", headers={"Retry-After": "3"}),
        AppError("an unexpected error occurred"),
    ],
    ids=lambda error: error.code,
)
def test_every_problem_body_is_a_problem(error: AppError) -> None:
    body = problem_response(error, "req-1").body

    assert Problem.model_validate(body).model_dump(exclude_unset=True) == body


def _policy_decision(name: str, *, allowed: bool, remaining: int) -> PolicyDecision:
    policy = Policy(name=name, limit=10, window_ms=60_000, algorithm=Algorithm.SLIDING)
    return PolicyDecision(
        check=RateLimitCheck(policy, "user-1"),
        allowed=allowed,
        remaining=remaining,
        reset_at_ms=1_800_000_060_000,
        retry_after_ms=0 if allowed else 2_500,
    )


@pytest.mark.parametrize(
    "decision",
    [
        Decision(allowed=True),
        Decision(allowed=True, policies=[_policy_decision("user", allowed=True, remaining=4)]),
        Decision(
            allowed=False,
            policies=[
                _policy_decision("user", allowed=True, remaining=4),
                _policy_decision("ip", allowed=False, remaining=0),
            ],
            reason=Reason.LIMIT_EXCEEDED,
        ),
        Decision(allowed=True, reason=Reason.FAIL_OPEN),
    ],
    ids=["no-policy", "allowed", "denied", "fail-open"],
)
def test_every_decision_body_is_a_decision(decision: Decision) -> None:
    body: dict[str, Any] = decision_body(decision)

    assert DecisionModel.model_validate(body).model_dump(exclude_unset=True) == body


def test_the_document_is_built_once_and_each_caller_gets_a_copy() -> None:
    changed = openapi_document()
    changed["paths"].clear()

    assert openapi_json() is openapi_json()
    assert openapi_document()["paths"]
