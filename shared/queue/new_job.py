"""A new job, before it is stored: a validated enqueue request with its id, owner and moment.

Its id is a fresh ULID, or, with an idempotency key, derived from (owner, key) so that a retry
names the same job (`shared.queue.job_ids`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from shared.queue.job_ids import idempotent_job_id, new_job_id
from shared.queue.models import EnqueueRequest, JobStatus, JobView
from shared.queue.record import job_from_hash, new_job_fields
from shared.store.json_text import compact_json
from shared.store.keys import SCORE_PRIORITY_STEP
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
    def score(self) -> int:
        """Its score in `ready` (priority first, then FIFO) or in `delayed` (due time)."""
        if self.status is JobStatus.DELAYED:
            return self.run_at_ms
        return self.request.priority * SCORE_PRIORITY_STEP + self.run_at_ms

    @functools.cached_property
    def fingerprint(self) -> str:
        """What makes two requests with one idempotency key the same request."""
        request = self.request
        same = [
            request.type,
            request.data,
            request.priority,
            request.delay_ms,
            request.run_at,
            request.max_attempts,
            request.timeout_ms,
        ]
        # Appended only when set, so requests without them keep the fingerprint they had.
        same += [extra for extra in (request.callback_url,) if extra is not None]
        return hashlib.sha256(compact_json(same).encode()).hexdigest()[:32]

    @functools.cached_property
    def hash_fields(self) -> list[str]:
        """The job HASH as HSET arguments, encoded once (the script and `view` both need it)."""
        return new_job_fields(self)

    def view(self) -> JobView:
        """The job as `status` will show it once stored."""
        return job_from_hash(as_pairs(self.hash_fields, "a new job"))


def new_job(
    request: EnqueueRequest, user_id: str | None, idempotency_key: str | None, now_ms: int
) -> NewJob:
    if idempotency_key is None:
        job_id = new_job_id(now_ms)
    else:
        job_id = idempotent_job_id(user_id or "", idempotency_key)
    return NewJob(job_id, request, user_id, idempotency_key, now_ms)
