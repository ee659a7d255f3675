"""What the API answers, as frozen dataclasses with snake_case fields, each mirroring one schema
of openapi.json (`Job` is `JobView`, `RateLimitDecision` is `Decision`), and what enqueue takes
(`EnqueueRequest`, a TypedDict of the body's fields in snake_case).

Each `from_json` checks the reply's shape (`ReplyShapeError` otherwise). Fields the API may add
later are ignored, so an older client keeps working against a newer server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypedDict

from ai_queue_client.json_reader import JsonObject


class JobStatus(StrEnum):
    PENDING = "pending"
    DELAYED = "delayed"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class WebhookStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Algorithm(StrEnum):
    SLIDING = "sliding"
    FIXED = "fixed"
    TOKEN = "token"  # noqa: S105 - an algorithm's name


class Reason(StrEnum):
    LIMIT_EXCEEDED = "limit_exceeded"
    BLOCKED = "blocked"
    FAIL_OPEN = "fail_open"
    REDIS_UNAVAILABLE = "redis_unavailable"


class AttemptOutcome(StrEnum):
    RETRYING = "retrying"
    FAILED = "failed"
    LEASE_EXPIRED = "lease_expired"


class EnqueueOptions(TypedDict, total=False):
    """The optional fields of an enqueue body (SPEC section 5), in snake_case."""

    priority: int
    delay_ms: int
    run_at: int
    max_attempts: int
    timeout_ms: int
    idempotency_key: str
    user_id: str
    callback_url: str
    cache_key: str
    cache_ttl_s: int
    cache_scope: Literal["user", "global"]


class EnqueueRequest(EnqueueOptions):
    """One job of `enqueue_many`: `type`, `data` and any of the options."""

    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float
    message: str | None = None

    @classmethod
    def from_json(cls, value: object) -> Progress:
        fields = JsonObject(value, "Progress")
        return cls(percent=fields.number("percent"), message=fields.maybe_text("message"))


@dataclass(frozen=True, slots=True)
class JobError:
    message: str
    kind: str
    traceback: str | None = None

    @classmethod
    def from_json(cls, value: object) -> JobError:
        fields = JsonObject(value, "JobError")
        return cls(
            message=fields.text("message"),
            kind=fields.text("kind"),
            traceback=fields.maybe_text("traceback"),
        )


@dataclass(frozen=True, slots=True)
class WebhookState:
    status: WebhookStatus
    attempts: int
    last_error: str | None = None

    @classmethod
    def from_json(cls, value: object) -> WebhookState:
        fields = JsonObject(value, "WebhookState")
        return cls(
            status=fields.choice("status", WebhookStatus),
            attempts=fields.integer("attempts"),
            last_error=fields.maybe_text("lastError"),
        )


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt that did not complete (a completed job's last attempt is its status)."""

    attempt: int
    outcome: AttemptOutcome
    at: int
    error: JobError | None = None

    @classmethod
    def from_json(cls, value: object) -> AttemptRecord:
        fields = JsonObject(value, "AttemptRecord")
        return cls(
            attempt=fields.integer("attempt"),
            outcome=fields.choice("outcome", AttemptOutcome),
            at=fields.integer("at"),
            error=fields.maybe_nested("error", JobError.from_json),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A job as `GET /api/status` shows it; times are epoch milliseconds."""

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
    history: tuple[AttemptRecord, ...] | None = None

    @property
    def is_final(self) -> bool:
        """Completed, failed or cancelled: it will not change any more."""
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, value: object) -> Job:
        fields = JsonObject(value, "JobView")
        return cls(
            id=fields.text("id"),
            type=fields.text("type"),
            user_id=fields.maybe_text("userId"),
            status=fields.choice("status", JobStatus),
            priority=fields.integer("priority"),
            attempts=fields.integer("attempts"),
            max_attempts=fields.integer("maxAttempts"),
            progress=fields.maybe_nested("progress", Progress.from_json),
            result=fields.raw("result"),
            error=fields.maybe_nested("error", JobError.from_json),
            created_at=fields.integer("createdAt"),
            run_at=fields.maybe_integer("runAt"),
            started_at=fields.maybe_integer("startedAt"),
            finished_at=fields.maybe_integer("finishedAt"),
            updated_at=fields.maybe_integer("updatedAt"),
            cancel_requested=fields.maybe_flag("cancelRequested"),
            webhook=fields.maybe_nested("webhook", WebhookState.from_json),
            history=fields.maybe_items("history", AttemptRecord.from_json),
        )


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    last_seen_ms: int
    active: int
    concurrency: int | None = None

    @classmethod
    def from_json(cls, value: object) -> WorkerInfo:
        fields = JsonObject(value, "WorkerInfo")
        return cls(
            id=fields.text("id"),
            last_seen_ms=fields.integer("lastSeenMs"),
            active=fields.integer("active"),
            concurrency=fields.maybe_integer("concurrency"),
        )


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """Billed commands of one UTC day as the product counted them, against the budget."""

    day: str
    commands: int
    daily_budget: int | None
    resets_at_ms: int

    @classmethod
    def from_json(cls, value: object) -> DailyUsage:
        fields = JsonObject(value, "DailyUsage")
        return cls(
            day=fields.text("day"),
            commands=fields.integer("commands"),
            daily_budget=fields.maybe_integer("dailyBudget"),
            resets_at_ms=fields.integer("resetsAtMs"),
        )


@dataclass(frozen=True, slots=True)
class TypeRunning:
    """Running jobs of one type counted by the concurrency limits, and its limit."""

    type: str
    running: int
    limit: int | None = None

    @classmethod
    def from_json(cls, value: object) -> TypeRunning:
        fields = JsonObject(value, "TypeRunning")
        return cls(
            type=fields.text("type"),
            running=fields.integer("running"),
            limit=fields.maybe_integer("limit"),
        )


@dataclass(frozen=True, slots=True)
class UserRunning:
    user_id: str
    running: int

    @classmethod
    def from_json(cls, value: object) -> UserRunning:
        fields = JsonObject(value, "UserRunning")
        return cls(user_id=fields.text("userId"), running=fields.integer("running"))


@dataclass(frozen=True, slots=True)
class ConcurrencyStats:
    """What TYPE_CONCURRENCY and USER_CONCURRENCY count: the types, the busiest users (at most
    20) and the per-user limit."""

    types: tuple[TypeRunning, ...]
    users: tuple[UserRunning, ...]
    user_limit: int | None = None

    @classmethod
    def from_json(cls, value: object) -> ConcurrencyStats:
        fields = JsonObject(value, "ConcurrencyStats")
        return cls(
            types=fields.items("types", TypeRunning.from_json),
            users=fields.items("users", UserRunning.from_json),
            user_limit=fields.maybe_integer("userLimit"),
        )


@dataclass(frozen=True, slots=True)
class QueueStats:
    """`GET /api/stats`: counts now, the last hour's outcomes, the live workers, today's billed
    commands and the running jobs counted by the concurrency limits."""

    pending: int
    delayed: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    completed_last_hour: int
    failed_last_hour: int
    oldest_pending_age_ms: int | None
    workers: tuple[WorkerInfo, ...]
    usage: DailyUsage
    concurrency: ConcurrencyStats

    @classmethod
    def from_json(cls, value: object) -> QueueStats:
        fields = JsonObject(value, "QueueStats")
        return cls(
            pending=fields.integer("pending"),
            delayed=fields.integer("delayed"),
            processing=fields.integer("processing"),
            completed=fields.integer("completed"),
            failed=fields.integer("failed"),
            cancelled=fields.integer("cancelled"),
            completed_last_hour=fields.integer("completedLastHour"),
            failed_last_hour=fields.integer("failedLastHour"),
            oldest_pending_age_ms=fields.maybe_integer("oldestPendingAgeMs"),
            workers=fields.items("workers", WorkerInfo.from_json),
            usage=fields.nested("usage", DailyUsage.from_json),
            concurrency=fields.nested("concurrency", ConcurrencyStats.from_json),
        )


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    policy: str
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int
    retry_after_s: int
    window_ms: int
    algorithm: Algorithm

    @classmethod
    def from_json(cls, value: object) -> PolicyDecision:
        fields = JsonObject(value, "PolicyDecision")
        return cls(
            policy=fields.text("policy"),
            allowed=fields.flag("allowed"),
            limit=fields.integer("limit"),
            remaining=fields.integer("remaining"),
            reset_ms=fields.integer("resetMs"),
            retry_after_s=fields.integer("retryAfterS"),
            window_ms=fields.integer("windowMs"),
            algorithm=fields.choice("algorithm", Algorithm),
        )


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """`POST /api/ratelimit-check`: the most restrictive policy at the top level (None when no
    policy applied) and every policy's own decision."""

    allowed: bool
    policies: tuple[PolicyDecision, ...]
    limit: int | None = None
    remaining: int | None = None
    reset_ms: int | None = None
    retry_after_s: int | None = None
    policy: str | None = None
    reason: Reason | None = None

    @classmethod
    def from_json(cls, value: object) -> RateLimitDecision:
        fields = JsonObject(value, "Decision")
        return cls(
            allowed=fields.flag("allowed"),
            policies=fields.items("policies", PolicyDecision.from_json),
            limit=fields.maybe_integer("limit"),
            remaining=fields.maybe_integer("remaining"),
            reset_ms=fields.maybe_integer("resetMs"),
            retry_after_s=fields.maybe_integer("retryAfterS"),
            policy=fields.maybe_text("policy"),
            reason=fields.maybe_choice("reason", Reason),
        )


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refused field of a 422: its `/`-separated path, what is wrong, pydantic's type."""

    field: str
    message: str
    type: str

    @classmethod
    def from_json(cls, value: object) -> FieldError:
        fields = JsonObject(value, "FieldError")
        return cls(
            field=fields.text("field"), message=fields.text("message"), type=fields.text("type")
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """An error body (`application/problem+json`, RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    errors: tuple[FieldError, ...] = ()

    @classmethod
    def from_json(cls, value: object) -> Problem:
        fields = JsonObject(value, "Problem")
        return cls(
            type=fields.text("type"),
            title=fields.text("title"),
            status=fields.integer("status"),
            detail=fields.text("detail"),
            code=fields.text("code"),
            request_id=fields.text("requestId"),
            errors=fields.items("errors", FieldError.from_json),
        )
