"""The API's JSON shapes of the queue (camelCase, SPEC section 5).

`EnqueueRequest` enforces every rule of the enqueue body. Two rules depend on the request's
moment and the deployment, so they come in the validation context (`enqueue_context`): the
serialized size of `data` (`MAX_JOB_DATA_BYTES`) and how far ahead `runAt` may be.
"""

# No `from __future__ import annotations`: pydantic would compile and evaluate every field's
# annotation string when the class is created (cold start).

import functools
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from shared import clock
from shared.store.json_text import MAX_JSON_DEPTH, TooDeep, compact_json
from shared.usage.models import DailyUsage

JOB_TYPE_PATTERN = r"^[a-z0-9_.:-]{1,64}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,128}$"  # printable ASCII: the same in a header
MAX_USER_ID_CHARS = 256
DEFAULT_PRIORITY = 5
MAX_PRIORITY = 9
MAX_DELAY_MS = 30 * 86_400_000
# As seconds, the years 2001 to 5138; as milliseconds, January 1970 to 1973: plainly seconds.
EPOCH_SECONDS_RANGE = (1_000_000_000, 100_000_000_000)
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS = 20
DEFAULT_TIMEOUT_MS = 300_000
MIN_TIMEOUT_MS = 1_000
MAX_TIMEOUT_MS = 900_000
ENQUEUE_BODY_FACTOR = 4
ENQUEUE_ENVELOPE_BYTES = 16_384
MAX_CALLBACK_URL_CHARS = 2048
CALLBACK_URL_PATTERN = r"^https?://[^\s]+$"
CACHE_KEY_PATTERN = IDEMPOTENCY_KEY_PATTERN  # printable ASCII, 1-128 characters
MAX_CACHE_TTL_S = 7 * 86_400
DEFAULT_CACHE_TTL_S = 86_400  # as long as a finished job is kept by default (JOB_RETENTION_S)
MAX_BATCH_JOBS = 100
# A batch's data in all (each job's still within MAX_JOB_DATA_BYTES): what one Upstash request
# carries comfortably (its limit is 10 MB), under Vercel's 4.5 MB request body limit once read.
MAX_BATCH_DATA_BYTES = 2 * 1_048_576
MAX_BATCH_BODY_BYTES = 4 * 1_048_576

CacheScope = Literal["user", "global"]


class JobStatus(StrEnum):
    PENDING = "pending"
    DELAYED = "delayed"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # Each model's validator is built on its first use, not at import: a function builds
        # only the models its requests need (cold start).
        defer_build=True,
    )

    def body(self) -> dict[str, Any]:
        """The JSON body (camelCase) of a response."""
        return self.model_dump(mode="json")


def is_idempotency_key(text: str) -> bool:
    return re.fullmatch(IDEMPOTENCY_KEY_PATTERN, text) is not None


def enqueue_context(max_data_bytes: int, now_ms: int) -> dict[str, int]:
    return {"max_data_bytes": max_data_bytes, "now_ms": now_ms}


def max_enqueue_body_bytes(max_data_bytes: int) -> int:
    """JSON escapes (\u00e9 is 6 bytes for 2) and indentation can make a valid body several
    times larger than its compact `data`; the exact limit is checked on `data` itself (422)."""
    return ENQUEUE_BODY_FACTOR * max_data_bytes + ENQUEUE_ENVELOPE_BYTES


def max_batch_body_bytes(max_data_bytes: int) -> int:
    """A batch body's limit: room for 100 jobs, and never less than one job's."""
    return max(MAX_BATCH_BODY_BYTES, max_enqueue_body_bytes(max_data_bytes))


class EnqueueRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)]
    data: dict[str, Any]
    priority: Annotated[int, Field(ge=0, le=MAX_PRIORITY)] = DEFAULT_PRIORITY
    delay_ms: Annotated[int | None, Field(ge=0, le=MAX_DELAY_MS)] = None
    run_at: Annotated[int | None, Field(ge=0)] = None
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)] = DEFAULT_MAX_ATTEMPTS
    timeout_ms: Annotated[int, Field(ge=MIN_TIMEOUT_MS, le=MAX_TIMEOUT_MS)] = DEFAULT_TIMEOUT_MS
    idempotency_key: Annotated[str | None, Field(pattern=IDEMPOTENCY_KEY_PATTERN)] = None
    user_id: Annotated[str | None, Field(min_length=1, max_length=MAX_USER_ID_CHARS)] = None
    # Checked against the caller and WEBHOOK_ALLOWED_HOSTS by `shared.webhooks.targets`.
    callback_url: Annotated[
        str | None, Field(max_length=MAX_CALLBACK_URL_CHARS, pattern=CALLBACK_URL_PATTERN)
    ] = None
    # The result cache (SPEC section 12): `cacheScope: "global"` is checked against the caller.
    cache_key: Annotated[str | None, Field(pattern=CACHE_KEY_PATTERN)] = None
    cache_ttl_s: Annotated[int | None, Field(ge=1, le=MAX_CACHE_TTL_S)] = None
    cache_scope: CacheScope | None = None

    @field_validator("data")
    @classmethod
    def _data_fits(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        try:
            size = len(compact_json(value).encode())
        except TooDeep:
            raise PydanticCustomError(
                "too_deep", "is nested deeper than {limit} levels", {"limit": MAX_JSON_DEPTH}
            ) from None
        except ValueError:
            raise PydanticCustomError(
                "json_invalid", "must be plain JSON (no NaN or Infinity)"
            ) from None
        limit = (info.context or {}).get("max_data_bytes")
        if limit is not None and size > limit:
            raise PydanticCustomError(
                "too_large",
                "is {size} bytes serialized; the limit is {limit}",
                {"size": size, "limit": limit},
            )
        return value

    @field_validator("run_at")
    @classmethod
    def _run_at_in_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        if info.data.get("delay_ms") is not None:
            raise PydanticCustomError("conflict", "send delayMs or runAt, not both")
        if EPOCH_SECONDS_RANGE[0] <= value < EPOCH_SECONDS_RANGE[1]:
            raise PydanticCustomError(
                "epoch_seconds",
                "is {value}, epoch seconds (a date in {year}); send epoch milliseconds",
                {"value": value, "year": 1970 + value // 31_556_952},
            )
        now_ms = (info.context or {}).get("now_ms") or clock.now_ms()
        if value > now_ms + MAX_DELAY_MS:
            raise PydanticCustomError("too_far_ahead", "must be at most 30 days ahead")
        return value

    @field_validator("cache_ttl_s", "cache_scope")
    @classmethod
    def _only_with_a_cache_key(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("cache_key") is None:
            raise PydanticCustomError("needs_cache_key", "applies only with cacheKey")
        return value

    @functools.cached_property
    def data_json(self) -> str:
        """`data` as the job HASH stores it (compact JSON), serialized once per request."""
        return compact_json(self.data)

    def run_at_ms(self, now_ms: int) -> int:
        """When the job may first run: now unless delayed (a runAt in the past means now)."""
        if self.delay_ms is not None:
            return now_ms + self.delay_ms
        return max(self.run_at or now_ms, now_ms)


class EnqueueBatch(ApiModel):
    """`{"jobs": [...]}`: 1 to 100 enqueue bodies, queued in one script, all or nothing."""

    model_config = ConfigDict(extra="forbid", strict=True)

    jobs: Annotated[list[EnqueueRequest], Field(min_length=1, max_length=MAX_BATCH_JOBS)]

    @field_validator("jobs")
    @classmethod
    def _fits_one_request(cls, jobs: list[EnqueueRequest]) -> list[EnqueueRequest]:
        size = sum(len(job.data_json.encode()) for job in jobs)
        if size > MAX_BATCH_DATA_BYTES:
            raise PydanticCustomError(
                "too_large",
                "carry {size} bytes of data in all; a batch carries at most {limit}",
                {"size": size, "limit": MAX_BATCH_DATA_BYTES},
            )
        first: dict[str, int] = {}
        for at, job in enumerate(jobs):
            key = job.idempotency_key
            if key is not None and first.setdefault(key, at) != at:
                raise PydanticCustomError(
                    "repeated_idempotency_key",
                    "jobs {first} and {at} share idempotencyKey '{key}'; each job needs its own",
                    {"first": first[key], "at": at, "key": key},
                )
        return jobs


class EnqueueOutcome(StrEnum):
    """What enqueue did for one job: queued it, or answered with a job that already exists."""

    CREATED = "created"
    REPLAYED = "replayed"  # its idempotency key named this job
    HIT = "hit"  # its cacheKey named this completed job (Job-Cache: hit)
    ATTACHED = "attached"  # its cacheKey named this job, still to run or running


class Progress(ApiModel):
    percent: Annotated[float, Field(ge=0, le=100)]
    message: str | None = None


MAX_TRACEBACK_CHARS = 4000
MAX_HISTORY = 10


class JobError(ApiModel):
    message: str
    kind: str
    # The last lines of the processor's traceback, at most MAX_TRACEBACK_CHARS (a tail).
    traceback: Annotated[str | None, Field(max_length=MAX_TRACEBACK_CHARS)] = None


class AttemptOutcome(StrEnum):
    RETRYING = "retrying"
    FAILED = "failed"
    LEASE_EXPIRED = "lease_expired"


class AttemptRecord(ApiModel):
    """One attempt that did not complete (a completed job's last attempt is its status)."""

    attempt: int
    outcome: AttemptOutcome
    at: int  # epoch ms
    error: JobError | None = None


class WebhookStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookState(ApiModel):
    """Where the delivery of a job's callback stands (SPEC section 10)."""

    status: WebhookStatus
    attempts: Annotated[int, Field(ge=0)]
    last_error: str | None = None


class JobView(ApiModel):
    """A job as the status endpoint shows it (its `data` and `callbackUrl` stay private to the
    worker). `cancelRequested` and `webhook` appear only where they apply."""

    id: str
    type: str
    user_id: str | None
    status: JobStatus
    priority: int
    attempts: int
    max_attempts: int
    progress: Progress | None
    result: Any
    error: JobError | None
    created_at: int
    run_at: int | None
    started_at: int | None
    finished_at: int | None
    updated_at: int | None = None
    cancel_requested: bool | None = None
    webhook: WebhookState | None = None
    # The last MAX_HISTORY attempts that failed, oldest first (absent before the first).
    history: list[AttemptRecord] | None = None

    def body(self) -> dict[str, Any]:
        body = super().body()
        for optional in ("cancelRequested", "webhook", "history"):
            if body[optional] is None:
                del body[optional]
        for error in [body["error"], *(entry["error"] for entry in body.get("history", []))]:
            if error is not None and error.get("traceback") is None:
                error.pop("traceback", None)
        return body


class WorkerInfo(ApiModel):
    id: str
    last_seen_ms: int
    active: Annotated[int, Field(ge=0)]
    concurrency: Annotated[int, Field(ge=1)] | None = None


class TypeRunning(ApiModel):
    """Running jobs of one type claimed under the limits, and its TYPE_CONCURRENCY limit."""

    type: str
    running: Annotated[int, Field(ge=0)]
    limit: int | None = None


class UserRunning(ApiModel):
    user_id: str
    running: Annotated[int, Field(ge=1)]


class ConcurrencyStats(ApiModel):
    """What the concurrency limits count (`slots`): every type with a limit or a counted job,
    the users with the most counted running jobs (the first 20), and the per-user limit."""

    types: list[TypeRunning]
    users: list[UserRunning]
    user_limit: int | None = None


class QueueStats(ApiModel):
    pending: int
    delayed: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    completed_last_hour: int
    failed_last_hour: int
    oldest_pending_age_ms: int | None
    workers: list[WorkerInfo]
    usage: DailyUsage  # today's billed commands (shared.usage)
    concurrency: ConcurrencyStats


class EnqueueBatchResult(ApiModel):
    """The answer to a batch: every job in the order sent, and what enqueue did for each."""

    jobs: list[JobView]
    outcomes: list[EnqueueOutcome]

    def body(self) -> dict[str, Any]:
        return {
            "jobs": [job.body() for job in self.jobs],
            "outcomes": [item.value for item in self.outcomes],
        }
