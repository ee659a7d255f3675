"""The callbacks waiting to be delivered: the `webhooks` ZSET (job id -> when its next try is
due) and each job's `webhook` field. A job that ends with a callbackUrl enters it (the queue's
end-of-job scripts); a try is claimed, made, then recorded, one script each:

    claim_delivery   4 billed commands (ZSCORE, HGETALL, ZADD); 2 when not due (ZSCORE)
    record_delivery  5 (ZSCORE, EXISTS, HSET, ZADD or ZREM); 2 when stale
    due_deliveries   1 (ZRANGEBYSCORE ... LIMIT)

A claim holds the entry for `IN_FLIGHT_MS` (longer than any try takes); a worker that dies
with it leaves it due again after that, for the next scan.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import JobView, WebhookState, WebhookStatus
from shared.queue.record import job_from_hash
from shared.store.client import call_redis
from shared.store.json_text import compact_json
from shared.store.keys import QueueKeys
from shared.store.replies import as_pairs, as_str, as_str_list
from shared.store.scripts import load_script, run_script

IN_FLIGHT_MS = 60_000
SCAN_LIMIT = 100


class Recorded(StrEnum):
    RECORDED = "recorded"
    STALE = "stale"  # another worker claimed the entry since: nothing written
    GONE = "gone"  # the job expired: its entry was removed


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due try, held until `fence_ms` (the entry's score while this claim holds it)."""

    fields: dict[str, str]
    fence_ms: int

    @functools.cached_property
    def job(self) -> JobView:
        return job_from_hash(self.fields)

    @property
    def job_id(self) -> str:
        return self.fields["id"]

    @property
    def callback_url(self) -> str:
        return self.fields["callbackUrl"]

    @property
    def body(self) -> bytes:
        """The job JSON as delivered: what `GET /api/status` shows, but for the delivery's own
        state (so every try of one delivery carries the same body)."""
        view = self.job.body()
        view.pop("webhook", None)
        return compact_json(view).encode()

    @property
    def state(self) -> WebhookState:
        """Where the delivery stood before this try."""
        return self.job.webhook or WebhookState(status=WebhookStatus.PENDING, attempts=0)


async def claim_delivery(
    redis: Redis, settings: Settings, keys: QueueKeys, job_id: str, *, now_ms: int
) -> ClaimedDelivery | None:
    """The job and its callback when a try is due now; None when it is not (or no longer)."""
    fence_ms = now_ms + IN_FLIGHT_MS
    reply = await run_script(
        redis,
        settings,
        load_script("webhooks/claim_delivery"),
        [keys.webhooks, keys.job(job_id)],
        [job_id, now_ms, fence_ms],
    )
    match reply:
        case ["claimed", fields]:
            claimed = ClaimedDelivery(as_pairs(fields, "claim delivery"), fence_ms)
            if claimed.fields.get("id") != job_id:
                raise BadRedisReply(f"claim delivery: job {job_id} is stored without its id")
            return claimed
        case ["not_due"] | ["gone"]:
            return None
    raise BadRedisReply(f"claim delivery replied {reply!r:.200}")


async def record_delivery(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    claimed: ClaimedDelivery,
    state: WebhookState,
    *,
    next_try_at_ms: int | None,
) -> Recorded:
    """Store `state`, and the next try's time (None: the delivery is over)."""
    reply = await run_script(
        redis,
        settings,
        load_script("webhooks/record_delivery"),
        [keys.webhooks, keys.job(claimed.job_id)],
        [
            claimed.job_id,
            claimed.fence_ms,
            compact_json(state.body()),
            "" if next_try_at_ms is None else next_try_at_ms,
        ],
        safe_to_repeat=True,
    )
    text = as_str(reply, "record delivery")
    if text not in set(Recorded):
        raise BadRedisReply(f"record delivery: unexpected outcome {text!r:.40}")
    return Recorded(text)


async def due_deliveries(
    redis: Redis, settings: Settings, keys: QueueKeys, *, now_ms: int, limit: int = SCAN_LIMIT
) -> list[str]:
    """Up to `limit` job ids whose try is due, the longest waiting first."""
    key = keys.webhooks
    reply = await call_redis(
        settings,
        lambda: redis.zrangebyscore(key, "-inf", now_ms, offset=0, count=limit),
        safe_to_repeat=True,
    )
    return as_str_list(reply, "due deliveries")
