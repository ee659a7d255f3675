"""Configuration from the environment (SPEC section 4), read once on first use and validated.

A bad value raises `ServerMisconfigured` naming the variable; nothing is read at import time.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from shared.config.parameter_store import resolve_secret_references
from shared.errors import ServerMisconfigured
from shared.ratelimit.policies import Policy, PolicyParseError, parse_policies

if TYPE_CHECKING:
    from shared.queue.routing import ConcurrencyLimits

DEFAULT_POLICIES = "user:100/1d,ip:20/1h"
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
_HOST = re.compile(r"^[a-z0-9.-]{1,253}$|^\[[0-9a-f:.]{2,45}\]$")


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False)

    upstash_url: HttpUrl = Field(alias="UPSTASH_REDIS_REST_URL")
    upstash_token: str = Field(alias="UPSTASH_REDIS_REST_TOKEN", min_length=1)
    queue_name: str = Field(alias="QUEUE_NAME", default="ai-queue")
    ratelimit_policies: tuple[Policy, ...] = Field(
        alias="RATELIMIT_POLICIES", default_factory=lambda: parse_policies(DEFAULT_POLICIES)
    )
    ratelimit_fail_mode: Literal["closed", "open"] = Field(
        alias="RATELIMIT_FAIL_MODE", default="closed"
    )
    # An end user's `cost` in ratelimit-check: more would let one user empty a shared budget
    # (everyone behind one NAT shares an `ip` policy).
    ratelimit_user_max_cost: int = Field(alias="RATELIMIT_USER_MAX_COST", default=1, ge=1, le=1000)
    auth_jwt_secret: str | None = Field(alias="AUTH_JWT_SECRET", default=None, min_length=32)
    auth_jwks_url: HttpUrl | None = Field(alias="AUTH_JWKS_URL", default=None)
    auth_jwt_audience: str | None = Field(alias="AUTH_JWT_AUDIENCE", default=None)
    auth_jwt_issuer: str | None = Field(alias="AUTH_JWT_ISSUER", default=None)
    auth_api_keys: tuple[str, ...] = Field(alias="AUTH_API_KEYS", default=())
    trusted_ip_header: str | None = Field(alias="TRUSTED_IP_HEADER", default=None)
    redis_timeout_ms: int = Field(alias="REDIS_TIMEOUT_MS", default=2000, ge=50, le=60_000)
    redis_url: str | None = Field(alias="REDIS_URL", default=None)
    max_job_data_bytes: int = Field(alias="MAX_JOB_DATA_BYTES", default=65536, ge=2, le=10_000_000)
    max_result_bytes: int = Field(alias="MAX_RESULT_BYTES", default=262144, ge=2, le=10_000_000)
    job_retention_s: int = Field(alias="JOB_RETENTION_S", default=86400, ge=60, le=90 * 86400)
    # Browser origins allowed to call the API (SPEC section 10); empty: no CORS headers at all.
    cors_allow_origins: tuple[str, ...] = Field(alias="CORS_ALLOW_ORIGINS", default=())
    # Standard Webhooks signing secret (`whsec_<base64>`, or any text of 24+ characters).
    webhook_secret: str | None = Field(alias="WEBHOOK_SECRET", default=None, min_length=24)
    # Hosts a user's callbackUrl may name, and where http:// and private addresses are allowed.
    webhook_allowed_hosts: tuple[str, ...] = Field(alias="WEBHOOK_ALLOWED_HOSTS", default=())
    # The cron tick (SPEC section 11): Vercel sends `Authorization: Bearer $CRON_SECRET`.
    cron_secret: str | None = Field(alias="CRON_SECRET", default=None, min_length=16)
    alert_max_pending: int | None = Field(alias="ALERT_MAX_PENDING", default=None, ge=1)
    alert_max_oldest_pending_s: int | None = Field(
        alias="ALERT_MAX_OLDEST_PENDING_S", default=None, ge=1
    )
    alert_max_failure_rate: float | None = Field(
        alias="ALERT_MAX_FAILURE_RATE", default=None, gt=0, le=1
    )
    alert_min_workers: int | None = Field(alias="ALERT_MIN_WORKERS", default=None, ge=1)
    alert_daily_command_budget: int | None = Field(
        alias="ALERT_DAILY_COMMAND_BUDGET", default=None, ge=1
    )
    alert_webhook_url: HttpUrl | None = Field(alias="ALERT_WEBHOOK_URL", default=None)
    alert_sns_topic_arn: str | None = Field(
        alias="ALERT_SNS_TOPIC_ARN",
        default=None,
        pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$",
    )
    alert_cooldown_s: int = Field(alias="ALERT_COOLDOWN_S", default=3600, ge=60, le=7 * 86400)
    # Recurring jobs (SPEC section 12): JSON text, parsed and validated by shared.schedules.
    schedules: str | None = Field(alias="SCHEDULES", default=None)
    # Fairness (SPEC section 13): "type:N,type:N" and N.
    type_concurrency: tuple[tuple[str, int], ...] = Field(alias="TYPE_CONCURRENCY", default=())
    user_concurrency: int | None = Field(alias="USER_CONCURRENCY", default=None, ge=1, le=10_000)

    @field_validator("queue_name")
    @classmethod
    def _queue_name_is_a_plain_word(cls, value: str) -> str:
        if not _QUEUE_NAME.match(value):
            raise ValueError("must be 1-64 characters of letters, digits and _ . : -")
        return value

    @field_validator("ratelimit_policies", mode="before")
    @classmethod
    def _parse_policies(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_policies(value)
            except PolicyParseError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("type_concurrency", mode="before")
    @classmethod
    def _parse_type_limits(cls, value: object) -> object:
        if isinstance(value, str):
            # Cold start: routing loads the job models, which ratelimit-check never uses.
            from shared.queue.routing import parse_type_limits  # noqa: PLC0415

            return parse_type_limits(value)
        return value

    @field_validator("auth_api_keys", mode="before")
    @classmethod
    def _split_digests(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        digests = tuple(part.strip().lower() for part in value.split(",") if part.strip())
        for digest in digests:
            if not _SHA256_HEX.match(digest):
                raise ValueError("must be comma-separated SHA-256 hex digests (64 hex characters)")
        return digests

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        origins = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        for origin in origins:
            if origin == "*" or not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin; list each one as https://host[:port]"
                )
        return origins

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        hosts = tuple(part.strip().lower() for part in value.split(",") if part.strip())
        for host in hosts:
            if not _HOST.match(host):
                raise ValueError(f"{host!r} is not a host name (no scheme, port or path)")
        return hosts

    @field_validator("trusted_ip_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME.match(value):
            raise ValueError("must be an HTTP header name such as x-real-ip")
        return value.lower() if value else None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @property
    def redis_timeout_s(self) -> float:
        return self.redis_timeout_ms / 1000

    @property
    def job_retention_ms(self) -> int:
        return self.job_retention_s * 1000

    @property
    def concurrency_limits(self) -> ConcurrencyLimits:
        from shared.queue.routing import ConcurrencyLimits  # noqa: PLC0415 - cold start, as above

        return ConcurrencyLimits(self.type_concurrency, self.user_concurrency)

    @property
    def auth_configured(self) -> bool:
        return bool(self.auth_jwt_secret or self.auth_jwks_url or self.auth_api_keys)


FALLBACK_NAMES = {
    "UPSTASH_REDIS_REST_URL": "KV_REST_API_URL",
    "UPSTASH_REDIS_REST_TOKEN": "KV_REST_API_TOKEN",
}


def load_settings(environ: Mapping[str, str]) -> Settings:
    values = {name: value for name, value in environ.items() if value != ""}
    for name, fallback in FALLBACK_NAMES.items():
        if name not in values and fallback in values:
            values[name] = values[fallback]
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise ServerMisconfigured(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        variable = ".".join(str(part) for part in item["loc"])
        message = "is not set" if item["type"] == "missing" else item["msg"]
        message = message.removeprefix("Value error, ")
        problems.append(f"{variable} {message}")
    return "invalid configuration: " + "; ".join(problems)


@functools.cache
def get_settings() -> Settings:
    return load_settings(resolve_secret_references(os.environ))
