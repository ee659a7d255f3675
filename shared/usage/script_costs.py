"""How many commands each product script runs inside, from its keys, arguments and reply.

Upstash bills a script as 1 plus every command it runs, and the reply does not say how many
that was. Each model below follows its script's branches (the costs the scripts' Python
modules document) as far as the reply shows them; where it cannot tell (a repeated call, a
stale worker pruned by a beat) it takes the common branch. The meter's test checks every model
against Redis's INFO commandstats, call by call, and the whole meter over a mixed run.

A script may also report its own count as the last element of its reply (`self_reported`):
`queue_stats.lua` and the alert scripts do. A new script needs an entry here; a script without
one is priced `unknown_script_cost`, one command per key it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ScriptCall:
    name: str  # "<package>/<name>", as `load_script` names it
    keys: list[str]
    args: list[str]  # ARGV[i] is args[i - 1]
    reply: object  # decoded: strings, integers, nested lists, None


InnerCost = Callable[[ScriptCall], int]


def unknown_script_cost(call: ScriptCall) -> int:
    return max(1, len(call.keys))


def self_reported(call: ScriptCall) -> int:
    """The script's own count, the last element of its reply."""
    if isinstance(call.reply, list) and call.reply and isinstance(call.reply[-1], int):
        return call.reply[-1]
    return unknown_script_cost(call)


def _argv(call: ScriptCall, index: int) -> str:
    return call.args[index - 1] if len(call.args) >= index else ""


def _items(reply: object) -> list[object]:
    return reply if isinstance(reply, list) else []


def _head(reply: object) -> object:
    items = _items(reply)
    return items[0] if items else reply


def _pairs(reply: object) -> dict[str, object]:
    items = _items(reply)
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


START_FIELDS = 10
START_JOB_ARGS = 4  # start_jobs.lua: id, token, lane score, slot flag per job


def start_jobs(call: ScriptCall) -> int:
    """HMGET per job; ZADD XX CH; HSET + PUBLISH per job started; ZREM lanes when a job was
    popped from `ready`; ZREM (dropped, + HDEL slots when it held one) or ZMSCORE (a lease
    lost) when not every job started."""
    jobs = len(call.keys) - 3
    entries = [call.args[at : at + START_JOB_ARGS] for at in range(2, len(call.args), 4)]
    twins = 1 if any(len(entry) > 2 and entry[2] for entry in entries) else 0
    slots = any(len(entry) > 3 and entry[3] == "1" for entry in entries)
    started = len(_items(call.reply)) // START_FIELDS
    lost = 1 if started < jobs else 0
    freed = 1 if lost and slots else 0
    return jobs + 2 * started + (1 if started else 0) + twins + lost + freed


def take_job(call: ScriptCall) -> int:
    """HMGET; a job taken: ZSCORE, ZREM ready and lanes, ZADD, HSET, PUBLISH. Nothing taken:
    HMGET alone (the job no longer pending, the common case; a pending job another claim leased
    also costs a ZSCORE). + PUBLISH events either way when announced. A repeat is priced as a
    take."""
    announced = 1 if _argv(call, 6) else 0
    if not _items(call.reply):
        return 1 + announced
    return 7 + announced


END_JOB = 4  # end_job.lua: HSET, PEXPIRE, ZADD done, PUBLISH
SLOT_FREED = 2  # end_job.lua: HDEL slots, PUBLISH events, for a job that held a slot


COMPLETE_JOB_ARGS = 6  # complete_job.lua: id, token, result, progress, callback, slot per job


def complete_job(call: ScriptCall) -> int:
    """One job: ZREM lease; several: ZMSCORE, + ZREM when any was held, + one ZADD done when
    any completed. Per job completed: HSET, PEXPIRE, PUBLISH (+ ZADD webhooks with a callback,
    + HDEL and PUBLISH with a slot); cancelled: HMGET, ZREM the cancel lease, end_job; refused:
    HMGET. A repeat reads as completed."""
    outcomes = [str(outcome) for outcome in _items(call.reply)]
    entries = [call.args[at : at + COMPLETE_JOB_ARGS] for at in range(4, len(call.args), 6)]
    total = 1 if len(outcomes) == 1 else 1 + (1 if "completed" in outcomes else 0)
    total += 1 if "completed" in outcomes else 0  # the ZADD done of them all
    for outcome, entry in zip(outcomes, entries, strict=False):
        extra = (1 if entry[4:5] == ["1"] else 0) + (SLOT_FREED if entry[5:6] == ["1"] else 0)
        if outcome == "completed":
            total += END_JOB - 1 + extra
        elif outcome == "cancelled":
            total += 2 + END_JOB + extra
        else:
            total += 1
    return total


def fail_job(call: ScriptCall) -> int:
    """ZREM, HMGET history; retrying: HSET, ZADD delayed, PUBLISH; failed: end_job."""
    callback = 1 if _argv(call, 9) == "1" else 0
    slot = SLOT_FREED if _argv(call, 12) == "1" else 0
    if call.reply == "retrying":
        return 5 + slot
    if call.reply == "failed":
        return 2 + END_JOB + callback + slot
    if call.reply == "cancelled":
        return 3 + END_JOB + callback + slot
    return 2


def report_progress(call: ScriptCall) -> int:
    """ZSCORE; HSET + PUBLISH when the lease is held."""
    return 3 if call.reply == 1 else 1


RELEASE_JOB_ARGS = 6  # release_jobs.lua: member, priority, attempts, type, user, slot flag


def release_jobs(call: ScriptCall) -> int:
    """ZREM per job; HSET + PUBLISH per job handed back; ZADD ready + ZADD lanes when any was;
    HDEL slots when one handed back held one; PUBLISH events when either; HDEL to sign off."""
    offered = (len(call.args) - 4) // RELEASE_JOB_ARGS
    entries = [call.args[at : at + RELEASE_JOB_ARGS] for at in range(4, len(call.args), 6)]
    holding = {entry[0].rpartition("|")[0] for entry in entries if entry[-1] == "1"}
    handed_back = {str(job_id) for job_id in _items(call.reply)}
    freed = 1 if holding & handed_back else 0
    released = len(handed_back)
    sign_off = 1 if _argv(call, 2) else 0
    wake = 1 if released or freed else 0
    return offered + 2 * released + (2 if released else 0) + freed + wake + sign_off


def beat(call: ScriptCall) -> int:
    """ZADD XX CH renewal (+ ZMSCORE when one was lost); ZRANGE leases, ZRANGE delayed, HSET
    heartbeat; 2 ZREMRANGEBYSCORE to trim; HGETALL (+ HDEL, not visible) to prune."""
    renewed = (len(call.args) - 6) // 2
    lost = _items(_head(call.reply))
    trim = 2 if _argv(call, 5) not in ("", "0") else 0
    prune = 1 if _argv(call, 6) not in ("", "0") else 0
    return (1 if renewed > 0 else 0) + (1 if lost else 0) + 3 + trim + prune


def settle(call: ScriptCall) -> int:
    """ZMSCORE + ZREM for expired leases, HMGET per entry, HSET + PUBLISH per job made ready,
    end_job per job ended, ZREM delayed, ZADD ready + ZADD lanes + PUBLISH events when any became
    ready, HDEL slots for the expired leases (+ PUBLISH events when one held a slot and no job
    became ready: not visible).
    When nothing changed, the expired leases were settled already (only the ZMSCORE ran); a
    lease of a job never started goes back without HSET + PUBLISH (priced as a started one)."""
    expired = int(_argv(call, 6) or 0)
    due = len(call.args) - 6 - expired
    counts = _items(call.reply)
    ready = int(str(counts[0])) if counts else 0
    ended = int(str(counts[1])) if len(counts) > 1 else 0
    taken_back = expired if ready or ended else 0
    cost = taken_back + due + 2 * ready + END_JOB * ended
    cost += (1 if expired else 0) + 2 * (1 if taken_back else 0) + (1 if due else 0)
    return cost + (3 if ready else 0)


def _applied_limits(call: ScriptCall, consume_args: list[str]) -> int:
    """apply_rate_limits.lua: MGET, then one SET (or DEL) per key when it consumes."""
    cost, consume = [*consume_args, "0", "0"][:2]
    return len(call.keys) if consume == "1" and cost not in ("0", "") else 0


JOB_HEADER = 12  # enqueue_job.lua: the values before each job's HASH fields


@dataclass(frozen=True)
class _EnqueuedJob:
    delayed: bool
    probes: bool  # it has an idempotency key: HGETALL of the job that key names
    cached: bool  # it has a cacheKey: HGETALL of the job that key names


def _enqueued_jobs(call: ScriptCall) -> list[_EnqueuedJob]:
    jobs, at = [], 8
    for _ in range(int(_argv(call, 1) or 0)):
        jobs.append(
            _EnqueuedJob(
                delayed=_argv(call, at + 2) == "d",
                probes=_argv(call, at + 5) not in ("", "0"),
                cached=_argv(call, at + 9) != "",
            )
        )
        at += JOB_HEADER + int(_argv(call, at + 11) or 0)
    return jobs


def _reads(job: _EnqueuedJob, answer: object) -> int:
    """HGETALLs of one job: its idempotency key's job, then (not replayed by it, not attached to
    an earlier job of the batch) its cacheKey's job."""
    outcome, detail = [*_items(answer), None, None][:2]
    replayed = job.probes and outcome == "replayed"
    batch_twin = outcome == "attached" and isinstance(detail, int)
    return (1 if job.probes else 0) + (1 if job.cached and not replayed and not batch_twin else 0)


def enqueue_job(call: ScriptCall) -> int:
    """Per job: HGETALL for an idempotency key and for a cacheKey; MGET of the limits; when any
    job is new and allowed, SET per limit key, HSET per new job, ZADD + PUBLISH per set joined,
    ZADD lanes when `ready` was, and the turns' calls (the reply's last element).
    (A job replacing an expired cache entry also runs DEL and ZREMs: not visible here.)"""
    jobs = _enqueued_jobs(call)
    items = _items(call.reply)
    outcome = items[0] if items else None
    limit_keys = int(_argv(call, 2) or 0)
    mget = 1 if limit_keys else 0
    if outcome == "reused":
        upto = int(str(items[1])) if len(items) > 1 else len(jobs)
        return sum(1 if job.probes else 0 for job in jobs[:upto])
    answers = _items(items[1]) if outcome == "answered" and len(items) > 1 else []
    if outcome == "denied":
        return sum(_reads(job, ["created"]) for job in jobs) + mget
    reads = sum(_reads(job, answer) for job, answer in zip(jobs, answers, strict=False))
    created = [
        job for job, answer in zip(jobs, answers, strict=False) if _head(answer) == "created"
    ]
    if not created:
        return reads + mget
    limit_writes = len(call.keys) and int(_argv(call, 2) or 0)
    sets = len({job.delayed for job in created})
    lanes = 1 if any(not job.delayed for job in created) else 0
    turns = items[3] if len(items) > 3 and isinstance(items[3], int) else 0
    return reads + mget + limit_writes + len(created) + 2 * sets + lanes + turns


def check_rate_limits(call: ScriptCall) -> int:
    """MGET; SET per key when allowed and consuming."""
    if not call.keys:
        return 0
    allowed = _head(call.reply) == 1
    return 1 + (_applied_limits(call, call.args[1:3]) if allowed else 0)


def cancel_job(call: ScriptCall) -> int:
    """HGETALL; a fresh cancel: ZREM, end_job (+ ZADD webhooks, PUBLISH events with a callback),
    ZREMRANGEBYSCORE; a fresh cancel request: ZSCORE, ZREM, ZADD, HSET, 2 PUBLISH."""
    items = _items(call.reply)
    outcome = items[0] if items else call.reply
    fields = _pairs(items[1]) if len(items) > 1 else {}
    fresh = fields.get("updatedAt") == _argv(call, 3)
    if outcome == "cancelled" and fresh:
        callback = 2 if fields.get("callbackUrl") else 0
        delayed = int(str(fields.get("runAt") or 0)) > int(str(fields.get("createdAt") or 0))
        unqueue = 1 if delayed else 3  # ZREM delayed; or ZSCORE, ZREM ready, ZREM lanes
        return 1 + unqueue + END_JOB + callback + 1
    if outcome == "requested" and fresh:
        return 1 + 6
    return 1


def finish_cancelled(call: ScriptCall) -> int:
    """HMGET; ZREM both leases and end_job when it ends the job."""
    callback = 1 if _argv(call, 5) == "1" else 0
    slot = SLOT_FREED if _argv(call, 8) == "1" else 0
    return 2 + END_JOB + callback + slot if call.reply == "cancelled" else 1


def index_page(call: ScriptCall) -> int:
    """One ZREVRANGEBYSCORE (another only past a page of ties at the cursor's score)."""
    return 1


def purge_jobs(call: ScriptCall) -> int:
    """HMGET per job; DEL + ZREM webhooks when any was purged; ZREM done; ZCOUNT."""
    jobs = len(call.keys) - 2
    purged = _items(call.reply)[:1] or [0]
    return jobs + (1 if jobs else 0) + (2 if purged[0] else 0) + 1


def retry_jobs(call: ScriptCall) -> int:
    """HMGET per job; HSET, HDEL, PERSIST, PUBLISH per job retried; ZREM done; ZADD ready, ZADD
    lanes + PUBLISH events; ZCARD when retrying by status."""
    jobs = len(call.keys) - 4
    retried = len(_items(_head(call.reply)))
    by_status = 1 if _argv(call, 4) else 0
    removed = 1 if retried or (by_status and jobs) else 0
    return jobs + 4 * retried + removed + (3 if retried else 0) + by_status


def claim_delivery(call: ScriptCall) -> int:
    """ZSCORE; HGETALL + ZADD (claimed) or ZREM (gone)."""
    return 1 if _head(call.reply) == "not_due" else 3


def record_delivery(call: ScriptCall) -> int:
    """ZSCORE; EXISTS; ZREM (gone) or HSET + ZADD/ZREM (recorded)."""
    return {"stale": 1, "gone": 3}.get(str(call.reply), 4)


def advance_schedules(call: ScriptCall) -> int:
    """GET per schedule record; SET per record moved forward (the reply)."""
    moved = call.reply if isinstance(call.reply, int) else len(call.keys)
    return len(call.keys) + moved


SCRIPT_COSTS: dict[str, InnerCost] = {
    "queue/lease_jobs": self_reported,
    "queue/start_jobs": start_jobs,
    "queue/take_job": take_job,
    "queue/complete_job": complete_job,
    "queue/fail_job": fail_job,
    "queue/report_progress": report_progress,
    "queue/release_jobs": release_jobs,
    "queue/beat": beat,
    "queue/settle": settle,
    "queue/enqueue_job": enqueue_job,
    "queue/cancel_job": cancel_job,
    "queue/finish_cancelled": finish_cancelled,
    "queue/index_page": index_page,
    "queue/purge_jobs": purge_jobs,
    "queue/retry_jobs": retry_jobs,
    "queue/queue_stats": self_reported,
    "ratelimit/check_rate_limits": check_rate_limits,
    "webhooks/claim_delivery": claim_delivery,
    "webhooks/record_delivery": record_delivery,
    "schedules/advance_schedules": advance_schedules,
    "alerts/check_alerts": self_reported,
    "alerts/record_alerts": self_reported,
}
