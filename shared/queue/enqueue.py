"""Enqueue: the caller's rate limits and the new jobs, one job or a batch, in one atomic script
and one request.

`enqueue_job.lua` answers each job in order: a known idempotency key replays the stored job; a
`cacheKey` answers with the job it names while that job is still to run or running (attached)
or completed within the request's cache TTL (hit); otherwise the job is new. Only new jobs are
charged, every `user` and `ip` policy at once for all of them, all or nothing (a denial writes
nothing); then the new jobs are created and idle workers told on the events channel.

A job with a `cacheKey` has the id of its cache entry (`shared.queue.new_job.cached_job_id`), so
the job a key names is a HASH the script declares in KEYS. A failed, cancelled or older
completed job under that id is replaced by the new request's job. Finished jobs expire after
`JOB_RETENTION_S`, so a hit needs `cacheTtlS` within the retention to last as long as asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply, IdempotencyKeyReused
from shared.queue.models import EnqueueOutcome, JobStatus, JobView
from shared.queue.new_job import NewJob
from shared.queue.record import job_from_hash
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision
from shared.ratelimit.guard import LimitedReply, LimitInputs, within_limits
from shared.store.keys import QueueKeys
from shared.store.replies import as_list, as_pairs
from shared.store.scripts import ScriptArg, load_script, run_script

REUSED_DETAIL = (
    "this idempotency key was used for a different request (type, data, priority, delay, "
    "attempts, timeout, callback or cache key); send a new key for a new request"
)


@dataclass(frozen=True)
class Enqueued:
    """One job's answer. `job` is None when a rate limit denied it (then nothing was written)."""

    job: JobView | None
    outcome: EnqueueOutcome | None
    decision: Decision

    @property
    def replayed(self) -> bool:
        return self.outcome is EnqueueOutcome.REPLAYED


@dataclass(frozen=True)
class EnqueuedBatch:
    """A batch's answer: every job and what was done for it, in order; both empty when a rate
    limit denied the batch, or when `reused_at` names the job whose idempotency key belongs to
    another request (then nothing was written either)."""

    jobs: list[JobView]
    outcomes: list[EnqueueOutcome]
    decision: Decision
    reused_at: int | None = None

    @property
    def created(self) -> int:
        return self.outcomes.count(EnqueueOutcome.CREATED)


class _KeyReused(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


async def enqueue_job(
    redis: Redis, settings: Settings, job: NewJob, checks: Sequence[RateLimitCheck]
) -> Enqueued:
    """Create `job` if every check admits it (`checks_for_enqueue` gives the caller's)."""
    batch = await enqueue_jobs(redis, settings, [job], checks)
    if batch.reused_at is not None:
        raise IdempotencyKeyReused(REUSED_DETAIL)
    if not batch.jobs:
        return Enqueued(job=None, outcome=None, decision=batch.decision)
    return Enqueued(job=batch.jobs[0], outcome=batch.outcomes[0], decision=batch.decision)


async def enqueue_jobs(
    redis: Redis, settings: Settings, jobs: Sequence[NewJob], checks: Sequence[RateLimitCheck]
) -> EnqueuedBatch:
    """Answer every job in one script call, charging `checks` once for the new ones. The jobs
    share one moment (the first's `created_at_ms`)."""
    keys = QueueKeys(settings.queue_name)
    jobs = list(jobs)

    async def run(limits: LimitInputs) -> LimitedReply[_Answers]:
        inputs = _ScriptInputs(keys, jobs, limits)
        reply = await run_script(
            redis, settings, load_script("queue/enqueue_job"), inputs.keys, inputs.args()
        )
        return _read_reply(jobs, reply)

    may_exist = sum(1 for job in jobs if job.idempotency_key or job.request.cache_key)
    try:
        limited = await within_limits(
            keys,
            checks,
            run,
            now_ms=jobs[0].created_at_ms,
            least_cost=len(jobs) - may_exist,
            peek=may_exist > 0,
        )
    except _KeyReused as reused:
        return EnqueuedBatch([], [], Decision(allowed=True), reused_at=reused.position)
    answers = limited.value
    if answers is None:
        return EnqueuedBatch([], [], limited.decision)
    return EnqueuedBatch(answers.jobs, answers.outcomes, limited.decision)


@dataclass
class _ScriptInputs:
    """KEYS and ARGV of `enqueue_job.lua`: every key once, each job's header then its fields."""

    queue: QueueKeys
    jobs: list[NewJob]
    limits: LimitInputs
    keys: list[str] = field(init=False)
    done_at: int = field(init=False, default=0)  # KEYS index of done:completed, 0 when unused
    _headers: list[ScriptArg] = field(init=False)
    _index: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = [self.queue.ready, self.queue.delayed, self.queue.lanes, self.queue.rounds]
        self._headers = [arg for job in self.jobs for arg in self._job_args(job)]
        if any(job.request.cache_key for job in self.jobs):
            self.done_at = len(self.keys) + 1
            done = [self.queue.done(status) for status in ("completed", "failed", "cancelled")]
            self.keys += [*done, self.queue.webhooks]
        self.keys += self.limits.keys

    def _at(self, key: str) -> int:
        if key not in self._index:
            self.keys.append(key)
            self._index[key] = len(self.keys)
        return self._index[key]

    def _job_args(self, job: NewJob) -> list[ScriptArg]:
        target = self._at(self.queue.job(job.id))
        probe = self._at(self.queue.job(job.idempotent_id)) if job.idempotent_id else 0
        fields = job.hash_fields
        delayed = job.status is JobStatus.DELAYED
        return [
            job.id,
            job.run_at_ms if delayed else job.request.priority,
            "d" if delayed else "r",
            job.run_at_ms,
            target,
            probe,
            job.fingerprint if job.idempotency_key else "",
            job.idempotency_key or "",
            job.user_id or "",
            job.cache_ttl_ms or "",
            job.request.type,
            len(fields),
            *fields,
        ]

    def args(self) -> list[ScriptArg]:
        limits = self.limits
        return [
            len(self.jobs),
            len(limits.keys),
            len(limits.args),
            len(limits.peek_args),
            self.jobs[0].created_at_ms,
            self.queue.events_channel,
            self.done_at,
            *self._headers,
            *limits.args,
            *limits.peek_args,
        ]


@dataclass(frozen=True)
class _Answers:
    jobs: list[JobView]
    outcomes: list[EnqueueOutcome]


def _read_reply(jobs: list[NewJob], reply: RESTResultT) -> LimitedReply[_Answers]:
    match reply:
        case ["answered", list(answers), rate_limits, *_] if len(answers) == len(jobs):
            read = _read_answers(jobs, answers)
            created = read.outcomes.count(EnqueueOutcome.CREATED)
            return LimitedReply(True, rate_limits, read, cost=created)
        case ["denied", rate_limits, int(cost)]:
            return LimitedReply(False, rate_limits, cost=cost)
        case ["reused", int(position)] if 1 <= position <= len(jobs):
            raise _KeyReused(position - 1)
    raise BadRedisReply(f"enqueue script replied {reply!r:.200}")


def _read_answers(jobs: list[NewJob], answers: list[object]) -> _Answers:
    views: list[JobView] = []
    outcomes: list[EnqueueOutcome] = []
    for job, answer in zip(jobs, answers, strict=True):
        match as_list(answer, "an enqueue answer"):
            case ["created"]:
                view, outcome = job.view(), EnqueueOutcome.CREATED
            case ["attached", int(position)] if 1 <= position <= len(views):
                view, outcome = views[position - 1], EnqueueOutcome.ATTACHED
            case [("replayed" | "hit" | "attached") as name, fields]:
                view = job_from_hash(as_pairs(fields, f"enqueue {name}"))
                outcome = EnqueueOutcome(name)
            case _:
                raise BadRedisReply(f"enqueue script answered a job with {answer!r:.200}")
        views.append(view)
        outcomes.append(outcome)
    return _Answers(views, outcomes)
