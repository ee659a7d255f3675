"""Every Redis key name, in one place. All keys of a queue share the hash tag `{<queue>}`, so one
script may touch several of them on Redis Cluster; every key a script touches is passed in KEYS
(Cluster and Upstash key locking both need it), never built inside the script.

The data model (values kept as strings; times are epoch milliseconds):

- `job:<id>`          HASH, one job: id type userId status priority attempts maxAttempts
                      timeoutMs data progress result error (JSON text) createdAt runAt startedAt
                      finishedAt token idempotencyKey. No TTL while live; `JOB_RETENTION_S`
                      once completed, failed or cancelled.
- `ready`             ZSET of job ids that can run now; score `priority * 1e13 + turn`, so
                      ZPOPMIN takes priority 0 first, then users in turn (`rounds`). `turn` is in
                      epoch ms: a job of a user with no job waiting gets the turn of the band's
                      first job (or now), the next jobs of a user one ms after their previous one;
                      jobs made ready again (retries, expired leases, hand-backs) get now.
- `lanes`             ZSET, all scores 0: one member `<type>|<score, 15 digits>|<id>|<userId>`
                      per job in `ready`, so ZRANGEBYLEX reads one type (or type prefix) in
                      `ready` order: the claims of workers started with `--types`, or under a
                      limit, read it instead of `ready` (`shared.queue.routing`).
- `rounds`            ZSET of `<priority>|<userId>` -> the score of that user's last job queued
                      in that band: where the user's next job goes. Entries below their band's
                      first ready job are stale and are trimmed by the enqueue that finds them.
- `slots`             HASH job id -> `<type>|<userId>` of every running job claimed under
                      `TYPE_CONCURRENCY` or `USER_CONCURRENCY`: the claim counts it, and whatever
                      removes the job's lease (complete, fail, cancel, release, settle) removes it.
- `delayed`           ZSET of job ids waiting for their `runAt` (first runs and retry backoff);
                      score = due time.
- `leases`            ZSET of `<id>|<token>` for running jobs; score = lease deadline. The token
                      is the fencing token: only the holder of the current member may renew,
                      complete, fail or release the job. A claim is two calls: the first pops
                      the id from `ready` under a provisional lease (the job still `pending`, in
                      neither `ready` nor `delayed`), the second starts it (`processing`).
- `done:<status>`     ZSET of finished job ids per final status, score = finishedAt; entries
                      older than the retention are trimmed: `done:cancelled` when a job is
                      cancelled, `done:completed` and `done:failed` by the workers' beat.
- idempotency keys    no key of their own: a request with an idempotency key creates the job
                      `job:<id>` with an id derived from (owner, key) (`shared.queue.job_ids`), so a
                      retry finds it in the same script, with its key declared in KEYS. The
                      window is the job's life plus `JOB_RETENTION_S`.
- result cache        no key of its own either: a job with a `cacheKey` is `job:<id>` with an id
                      derived from (scope, owner, cacheKey) (`shared.queue.new_job`), so the
                      enqueue script reads the job a cache key names from a declared key. Its
                      entry lives as long as the job: while it is to run or running, then
                      `JOB_RETENTION_S`; a new run replaces a failed, cancelled or stale one.
- `workers`           HASH worker id -> JSON `{lastSeenMs, active, concurrency}`; entries not
                      seen for a while are removed by stats and by the workers' beat.
- `rl:<policy>:<id>`  STRING, rate-limit state of every policy of that name for one identifier
                      (encoding in `shared/ratelimit/state.py`).
- `webhooks`          ZSET of job ids whose callback is to be delivered; score = when the next
                      try is due (a delivery in flight pushes it ahead, so a dead worker's
                      delivery is tried again). Entries leave when delivered or given up.
- `session:<id>`      STRING, one app session's JSON value (`shared.sessions`), with PX = its
                      TTL, slid forward by every read and touch. Ids are 256 random bits.
- `schedule:<name>`   STRING, the epoch ms of the last slot fired (or skipped) of one recurring
                      job (`shared.schedules`), with PX until a week after its next slot: a
                      schedule removed from `SCHEDULES` leaves nothing behind for long.
- channel `events`    for the workers: `<jobId> <readyAtMs>`, PUBLISHed by enqueue and whenever
                      settle or release make jobs ready, so idle workers wake at once;
                      `<jobId> cancel` when the owner cancels a running job; `<jobId> webhook`
                      when a job's callback is due and its worker is not the one to send it.
- channel `job:<id>`  `<updatedAt> <status>`, PUBLISHed by every change of the job (status,
                      progress, attempts, a cancel request), so a long-polling `status` answers
                      at once, and re-reads the job only for a change it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass

SCORE_PRIORITY_STEP = 10_000_000_000_000
LEASE_MEMBER_SEPARATOR = "|"


@dataclass(frozen=True)
class QueueKeys:
    queue_name: str

    @property
    def prefix(self) -> str:
        return f"aq:{{{self.queue_name}}}:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    @property
    def ready(self) -> str:
        return f"{self.prefix}ready"

    @property
    def lanes(self) -> str:
        return f"{self.prefix}lanes"

    @property
    def rounds(self) -> str:
        return f"{self.prefix}rounds"

    @property
    def slots(self) -> str:
        return f"{self.prefix}slots"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

    def done(self, status: str) -> str:
        return f"{self.prefix}done:{status}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    def rate_limit(self, policy_name: str, identifier: str) -> str:
        return f"{self.prefix}rl:{policy_name}:{identifier}"

    @property
    def webhooks(self) -> str:
        return f"{self.prefix}webhooks"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}events"

    def job_channel(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def schedule(self, name: str) -> str:
        return f"{self.prefix}schedule:{name}"


def lease_member(job_id: str, token: str) -> str:
    return f"{job_id}{LEASE_MEMBER_SEPARATOR}{token}"
