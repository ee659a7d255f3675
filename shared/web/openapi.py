"""The OpenAPI 3.1 document of every endpoint: served at `GET /api/openapi.json` and committed as
`openapi.json` (`make openapi`, or `python -m shared.web.openapi > openapi.json`).

Bodies are the JSON schemas of the pydantic models that parse requests and render responses
(camelCase, by alias), so the document follows the code; the two bodies rendered by hand are
described by `shared.web.response_models`. The error responses come from the error hierarchy,
one per status with its codes. Nothing is built at import: `openapi_json()` builds the text
once, on first use, and `openapi_document()` parses a copy of it for each caller.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import defaultdict
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from shared.queue.listing import JobListQuery, JobPage
from shared.queue.models import (
    IDEMPOTENCY_KEY_PATTERN,
    EnqueueBatch,
    EnqueueBatchResult,
    EnqueueRequest,
    JobView,
    QueueStats,
)
from shared.queue.purge import PurgeRequest, PurgeResult
from shared.queue.retry import RetryRequest, RetryResult
from shared.queue.watch import MAX_WAIT_MS
from shared.ratelimit.models import RateLimitCheckRequest
from shared.web.error_catalogue import PAGE_PATH, error_classes
from shared.web.response_models import Decision, Problem

DOCUMENT_PATH = "/api/openapi.json"
REF = "#/components/schemas/{model}"
Json = dict[str, Any]


# Each request body is one of these models; a batch body joins its list (rendered as `oneOf`).
ENQUEUE_BODIES: tuple[type[BaseModel], ...] = (EnqueueRequest, EnqueueBatch)
MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    *((model, "validation") for model in ENQUEUE_BODIES),
    (RateLimitCheckRequest, "validation"),
    (JobView, "serialization"),
    (EnqueueBatchResult, "serialization"),
    (QueueStats, "serialization"),
    (Decision, "serialization"),
    (Problem, "serialization"),
    (JobListQuery, "validation"),
    (JobPage, "serialization"),
    (RetryRequest, "validation"),
    (RetryResult, "serialization"),
    (PurgeRequest, "validation"),
    (PurgeResult, "serialization"),
)
ENQUEUE_EXAMPLES = {
    "job": {"type": "image.generate", "data": {"prompt": "a red fox"}},
    "delayed": {"type": "email.send", "data": {"to": "ada"}, "priority": 0, "delayMs": 60_000},
    "idempotent": {"type": "report.build", "data": {}, "idempotencyKey": "order-42"},
    "cached": {
        "type": "image.generate",
        "data": {"prompt": "a red fox"},
        "cacheKey": "sha256:9f86d081884c7d65",
        "cacheTtlS": 3600,
    },
    "batch": {
        "jobs": [
            {"type": "image.generate", "data": {"prompt": "a red fox"}},
            {"type": "image.upscale", "data": {"image": "fox.png"}, "idempotencyKey": "up-7"},
        ]
    },
}
RATE_LIMIT_CHECK_EXAMPLES = {
    "read": {"policy": "user", "consume": False},
    "consume": {"policy": "ip"},
    "refund": {"policy": "user", "identifier": "user-1", "cost": -1},
}
RATE_LIMIT_HEADERS = (
    "RateLimit-Policy",
    "RateLimit",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
# Headers an error of this status always carries (besides X-Request-Id), and may carry.
ERROR_HEADERS = {
    401: ("WWW-Authenticate",),
    405: ("Allow",),
    429: ("Retry-After",),
    503: ("Retry-After",),
}
OPTIONAL_ERROR_HEADERS = {429: RATE_LIMIT_HEADERS}
HEADERS: dict[str, tuple[str, Json]] = {
    "X-Request-Id": ("the caller's own when it is a plain token, else a new one", {}),
    "Location": ("the job's status URL, `/api/status?id=<id>`", {"format": "uri-reference"}),
    "Idempotent-Replayed": (
        "the job already existed for this idempotency key (a batch: every job's did)",
        {"const": "true"},
    ),
    "Job-Cache": (
        "with a cacheKey: `hit` (a completed job within cacheTtlS), `attached` (one still to "
        "run or running), `miss` (a new job); a batch: sent when every job was a hit, or "
        "every job attached",
        {"enum": ["hit", "attached", "miss"]},
    ),
    "RateLimit-Policy": ('every policy, IETF draft: `"user";q=100;w=86400`', {}),
    "RateLimit": ('every policy\'s state, IETF draft: `"user";r=42;t=3600`', {}),
    "X-RateLimit-Limit": ("the most restrictive policy's limit", {"type": "integer"}),
    "X-RateLimit-Remaining": ("what it has left", {"type": "integer"}),
    "X-RateLimit-Reset": ("its window's end, or next refill (epoch s)", {"type": "integer"}),
    "Retry-After": ("seconds to wait before trying again", {"type": "integer", "minimum": 0}),
    "WWW-Authenticate": ("the expected scheme, `Bearer`", {}),
    "Allow": ("the methods this path answers", {}),
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an end user's JWT (its `sub` is the user id) or a service key",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "a service key (or a user's JWT), instead of `Authorization`",
    },
}


class _NoFieldTitles(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@functools.cache
def openapi_json() -> str:
    """The document as the JSON text that is served and committed, built on first use."""
    return json.dumps(_build(), indent=2, ensure_ascii=False) + "\n"


def openapi_document() -> Json:
    """The document, a copy of its own for each caller (schema tools change what they load)."""
    document: Json = json.loads(openapi_json())
    return document


def _build() -> Json:
    refs, definitions = models_json_schema(
        MODELS, by_alias=True, ref_template=REF, schema_generator=_NoFieldTitles
    )
    schemas = definitions["$defs"]
    schemas["Problem"]["properties"]["code"]["enum"] = [error.code for error in error_classes()]
    ref = {model: refs[(model, mode)] for model, mode in MODELS}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ai-queue",
            "version": "1",
            "description": "A serverless AI job queue and rate limiter on Upstash Redis. Every "
            "error is application/problem+json; a method a path does not serve answers 405 with "
            "Allow; every response carries X-Request-Id.",
        },
        "paths": {**_paths(ref), **_jobs_paths(ref, schemas["JobListQuery"])},
        "components": {
            "schemas": schemas,
            "headers": {name: _header(name) for name in HEADERS},
            "responses": _error_responses(),
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def _paths(ref: dict[type[BaseModel], Json]) -> Json:
    job = _json("the job", ref[JobView])
    one_or_batch = {"oneOf": [ref[JobView], ref[EnqueueBatchResult]]}
    created = _json(
        "a new job, queued (Location: one job's status); a batch with a new job: every job "
        "and its outcome, in order",
        one_or_batch,
        "Location",
        "Job-Cache",
        *RATE_LIMIT_HEADERS,
    )
    replayed = _json(
        "the job that already exists: the one this idempotency key created "
        "(Idempotent-Replayed), or the one this cacheKey names (Job-Cache); a batch with no "
        "new job: every job and its outcome, in order",
        one_or_batch,
        "Location",
        "Idempotent-Replayed",
        "Job-Cache",
        *RATE_LIMIT_HEADERS,
    )
    return {
        "/api/enqueue": {
            "post": _operation(
                "enqueueJob",
                "Validate, rate-limit and queue a job, or a batch of 1-100 (charged for its new "
                "jobs, all or nothing), in one Upstash request",
                request=_request_body([ref[model] for model in ENQUEUE_BODIES], ENQUEUE_EXAMPLES),
                parameters=[_idempotency_key_header()],
                responses={"202": {**created, "links": _job_links()}, "200": replayed},
                errors=(400, 401, 403, 413, 415, 422, 429, 500, 502, 503),
            )
        },
        "/api/status": {
            "get": _operation(
                "getJob",
                "The job, to its owner or a service key; with waitMs, a long-poll that answers "
                "when the job is final (or, with after, has changed since)",
                parameters=[_job_id_query(), *_long_poll_queries()],
                responses={"200": job},
                errors=(401, 404, 422, 500, 502, 503),
            ),
            "delete": _operation(
                "cancelJob",
                "Cancel a job that has not started (200; again: 200), or ask its worker to stop "
                "a running one (202, cancelRequested); a finished job is 409",
                parameters=[_job_id_query()],
                responses={
                    "200": _json("the job, cancelled", ref[JobView]),
                    "202": _json("the running job, its cancel requested", ref[JobView]),
                },
                errors=(401, 404, 409, 422, 500, 502, 503),
            ),
        },
        "/api/stats": {
            "get": _operation(
                "getStats",
                "Queue counts and worker health (service keys only)",
                responses={"200": _json("the queue now", ref[QueueStats])},
                errors=(401, 403, 500, 502, 503),
            )
        },
        "/api/ratelimit-check": {
            "post": _operation(
                "checkRateLimit",
                "Check, and by default consume, a configured rate limit (a denial is a 200)",
                request=_request_body([ref[RateLimitCheckRequest]], RATE_LIMIT_CHECK_EXAMPLES),
                responses={
                    "200": _json("the decision", ref[Decision], *RATE_LIMIT_HEADERS, "Retry-After")
                },
                errors=(400, 401, 403, 413, 415, 422, 500, 502, 503),
            )
        },
        PAGE_PATH: {
            "get": _operation(
                "listErrors",
                "A page with a row per error code: where every problem's type links",
                responses={"200": _content("the page", "text/html", {"type": "string"})},
                public=True,
            )
        },
        "/api/cron": {
            "get": _operation(
                "runCronTick",
                "The per-minute tick: fire due recurring jobs, check the alerts (Vercel's cron "
                "with Bearer CRON_SECRET, or a service key)",
                responses={
                    "200": _json(
                        "what the tick did: atMs, the schedules fired, the alerts checked",
                        {"type": "object"},
                    )
                },
                errors=(401, 403, 500, 502, 503),
            ),
            "post": _operation(
                "runCronTickPost",
                "The per-minute tick: fire due recurring jobs, check the alerts (Vercel's cron "
                "with Bearer CRON_SECRET, or a service key)",
                responses={
                    "200": _json(
                        "what the tick did: atMs, the schedules fired, the alerts checked",
                        {"type": "object"},
                    )
                },
                errors=(401, 403, 500, 502, 503),
            ),
        },
        "/api/dashboard": {
            "get": _operation(
                "getDashboard",
                "The operator's dashboard: one self-contained HTML page that asks for a service "
                "key and reads the queue through this API (the page costs no Upstash request)",
                responses={"200": _content("the page", "text/html", {"type": "string"})},
                public=True,
            )
        },
        DOCUMENT_PATH: {
            "get": _operation(
                "getOpenApi",
                "This document",
                responses={"200": _content("OpenAPI 3.1", "application/json", {"type": "object"})},
                public=True,
            )
        },
    }


RETRY_EXAMPLES = {
    "ids": {"ids": ["01J8ZQ4V6S3N7WQ2M5C0XKJ9TB"]},
    "allFailed": {"status": "failed", "limit": 100},
}
PURGE_EXAMPLES = {"week": {"status": "completed", "olderThanS": 604_800}}
SERVICE_ERRORS = (400, 401, 403, 413, 415, 422, 500, 502, 503)


def _jobs_paths(ref: dict[type[BaseModel], Json], query: Json) -> Json:
    """The operator's endpoints (`functions/jobs.py`), service keys only."""
    required = set(query.get("required", []))
    parameters = [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in query["properties"].items()
    ]
    return {
        "/api/jobs": {
            "get": _operation(
                "listJobs",
                "Jobs of one status, newest first, a page at a time (service keys only); with "
                "type or userId a page may hold fewer jobs than limit while nextCursor is set",
                parameters=parameters,
                responses={"200": _json("a page of jobs", ref[JobPage])},
                errors=(401, 403, 422, 500, 502, 503),
            )
        },
        "/api/jobs/retry": {
            "post": _operation(
                "retryJobs",
                "Failed or cancelled jobs back to pending, attempts reset: the ids named, or "
                "the oldest limit jobs of a status (call again while remaining > 0)",
                request=_request_body([ref[RetryRequest]], RETRY_EXAMPLES),
                responses={"200": _json("what was retried", ref[RetryResult])},
                errors=SERVICE_ERRORS,
            )
        },
        "/api/jobs/purge": {
            "post": _operation(
                "purgeJobs",
                "Delete finished jobs of a status that finished more than olderThanS ago, "
                "limit per call (call again while remaining > 0)",
                request=_request_body([ref[PurgeRequest]], PURGE_EXAMPLES),
                responses={"200": _json("what was purged", ref[PurgeResult])},
                errors=SERVICE_ERRORS,
            )
        },
    }


def _operation(
    operation_id: str,
    summary: str,
    *,
    responses: Json,
    errors: tuple[int, ...] = (500,),
    request: Json | None = None,
    parameters: list[Json] | None = None,
    public: bool = False,
) -> Json:
    operation: Json = {"operationId": operation_id, "summary": summary}
    if parameters:
        operation["parameters"] = parameters
    if request:
        operation["requestBody"] = request
    operation["responses"] = {
        **responses,
        **{str(status): {"$ref": f"#/components/responses/{status}"} for status in errors},
    }
    if public:
        operation["security"] = []
    return operation


def _request_body(refs: list[Json], examples: Json) -> Json:
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    media_type = {"schema": schema, "examples": {k: {"value": v} for k, v in examples.items()}}
    return {"required": True, "content": {"application/json": media_type}}


def _json(description: str, schema: Json, *headers: str, required: tuple[str, ...] = ()) -> Json:
    return _content(description, "application/json", schema, *headers, required=required)


def _content(
    description: str, media_type: str, schema: Json, *headers: str, required: tuple[str, ...] = ()
) -> Json:
    return {
        "description": description,
        "headers": _headers(*headers, required=("X-Request-Id", *required)),
        "content": {media_type: {"schema": schema}},
    }


def _headers(*names: str, required: tuple[str, ...] = ()) -> Json:
    """`required` headers are always sent, the others when they apply."""
    return {
        **{name: {**_header(name), "required": True} for name in required},
        **{name: {"$ref": f"#/components/headers/{name}"} for name in names},
    }


def _header(name: str) -> Json:
    description, schema = HEADERS[name]
    return {"description": description, "schema": {"type": "string", **schema}}


def _error_responses() -> Json:
    """One response per status, with the codes of the hierarchy that answer it."""
    by_status: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for error in error_classes():
        by_status[error.status].append((error.code, error.title))
    return {str(status): _problem(status, codes) for status, codes in by_status.items()}


def _problem(status: int, codes: list[tuple[str, str]]) -> Json:
    schema = {
        "allOf": [
            {"$ref": REF.format(model="Problem")},
            {"properties": {"status": {"const": status}, "code": {"enum": [c for c, _ in codes]}}},
        ]
    }
    return _content(
        "; ".join(f"`{code}`: {title}" for code, title in codes),
        "application/problem+json",
        schema,
        *OPTIONAL_ERROR_HEADERS.get(status, ()),
        required=ERROR_HEADERS.get(status, ()),
    )


def _idempotency_key_header() -> Json:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "the same as the body's `idempotencyKey` (both: they must match)",
        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    }


def _job_id_query() -> Json:
    return {
        "name": "id",
        "in": "query",
        "required": True,
        "description": "the job id (a 26-character ULID); a malformed one is a 404 like an "
        "unknown one",
        "schema": {"type": "string"},
    }


def _long_poll_queries() -> list[Json]:
    return [
        {
            "name": "waitMs",
            "in": "query",
            "required": False,
            "description": "wait up to this long for the job to end (or change, with after); "
            "0 or absent: answer at once",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS},
        },
        {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "an updatedAt the caller has seen: answer as soon as the job's is later",
            "schema": {"type": "integer", "minimum": 0},
        },
    ]


def _job_links() -> Json:
    job_id = {"id": "$response.body#/id"}
    return {
        "GetJob": {"operationId": "getJob", "parameters": job_id},
        "CancelJob": {"operationId": "cancelJob", "parameters": job_id},
    }


def main() -> None:
    sys.stdout.write(openapi_json())


if __name__ == "__main__":
    main()
