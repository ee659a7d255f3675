"""A new job, before it is stored: a validated enqueue request with its id, owner and moment.

Its id is a fresh ULID, or, with an idempotency key, derived from (owner, key) so that a retry
names the same job (`shared.queue.job_ids`). With a `cacheKey` it is derived from the cache's
scope and key instead: one job id per cache entry, so the enqueue script finds the job a cache
key names in a key it declared (`shared.queue.enqueue`); its idempotency key, if any, still
names a job id of its own, which the script also checks.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from shared.queue.job_ids import idempotent_job_id, new_job_id
from shared.queue.models import (
    DEFAULT_CACHE_TTL_S,
    CacheScope,
    EnqueueRequest,
    JobStatus,
    JobView,
)
from shared.queue.record import job_from_hash, new_job_fields
from shared.store.json_text import compact_json
from shared.store.replies import as_pairs


@dataclass(frozen=True)
class NewJob:
    id: str
    request: EnqueueRequest
    user_id: str | None
    idempotency_key: str | None
    created_at_ms: int

    @property
    def run_at_ms(self) -> int:
        return self.request.run_at_ms(self.created_at_ms)

    @property
    def status(self) -> JobStatus:
        return JobStatus.DELAYED if self.run_at_ms > self.created_at_ms else JobStatus.PENDING

    @property
    def cache_scope(self) -> CacheScope | None:
        """Whose cache the job's `cacheKey` is in (its owner's by default); None without one."""
        if self.request.cache_key is None:
            return None
        return self.request.cache_scope or "user"

    @property
    def cache_ttl_ms(self) -> int | None:
        """How old a completed job may be to answer this request from the cache."""
        if self.request.cache_key is None:
            return None
        return (self.request.cache_ttl_s or DEFAULT_CACHE_TTL_S) * 1000

    @property
    def idempotent_id(self) -> str | None:
        """The job id its idempotency key names: its own id, unless it has a cacheKey."""
        if self.idempotency_key is None:
            return None
        if self.request.cache_key is None:
            return self.id
        return idempotent_job_id(self.user_id or "", self.idempotency_key)

    @functools.cached_property
    def fingerprint(self) -> str:
        """What makes two requests with one idempotency key the same request."""
        request = self.request
        before: list[object] = [request.type]
        after: list[object] = [
            request.priority,
            request.delay_ms,
            request.run_at,
            request.max_attempts,
            request.timeout_ms,
        ]
        # Appended only when set, so requests without them keep the fingerprint they had.
        after += [extra for extra in (request.callback_url,) if extra is not None]
        if request.cache_key is not None:
            after.append([request.cache_key, request.cache_ttl_s, request.cache_scope])
        # The compact JSON of [type, data, *after], with data as already encoded (and checked
        # for depth): wrapping data in the list would make it one level deeper.
        head, tail = compact_json(before)[:-1], compact_json(after)[1:]
        text = f"{head},{request.data_json},{tail}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    @functools.cached_property
    def hash_fields(self) -> list[str]:
        """The job HASH as HSET arguments, encoded once (the script and `view` both need it)."""
        fields = new_job_fields(self)
        if self.request.cache_key is not None:
            fields += ["cacheKey", self.request.cache_key, "cacheScope", self.cache_scope or ""]
        return fields

    def view(self) -> JobView:
        """The job as `status` will show it once stored."""
        return job_from_hash(as_pairs(self.hash_fields, "a new job"))


def new_job(
    request: EnqueueRequest, user_id: str | None, idempotency_key: str | None, now_ms: int
) -> NewJob:
    if request.cache_key is not None:
        scope = request.cache_scope or "user"
        job_id = cached_job_id(scope, user_id, request.cache_key)
    elif idempotency_key is None:
        job_id = new_job_id(now_ms)
    else:
        job_id = idempotent_job_id(user_id or "", idempotency_key)
    return NewJob(job_id, request, user_id, idempotency_key, now_ms)


def cached_job_id(scope: CacheScope, user_id: str | None, cache_key: str) -> str:
    """The id of the job a cache key names: the same (scope, owner, key) always give the same
    id. Never an idempotency key's: those are printable, and this one ends in a NUL and scope."""
    owner = (user_id or "") if scope == "user" else ""
    return idempotent_job_id(owner, f"{cache_key}\x00cache:{scope}")
