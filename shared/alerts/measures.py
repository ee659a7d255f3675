"""Reading what the configured alerts measure, with the alerts' state, in one script call
(`check_alerts.lua`); storage, when due, with one `INFO memory`.

Billed commands of one check (all conditions configured): EVALSHA, ZCARD ready, 2 ZCOUNT,
HGETALL workers, GET usage, HGETALL alerts: 7 with no job pending; + ZRANGE first with one, +
ZRANGE last and a ZRANGEBYSCORE per priority band between with more. Only the reads of
configured conditions are made: with none but ALERT_MAX_PENDING, 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.alerts.conditions import Condition, Measures
from shared.alerts.state import alerts_key
from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import JobStatus
from shared.queue.stats import HOUR_MS, WORKER_STALE_AFTER_MS, oldest_age_ms
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from shared.store.replies import as_int, as_list, as_pairs
from shared.store.scripts import ScriptArg, load_script, run_script
from shared.usage.meter import MeterKey, usage_key, usage_meter, utc_day

_READS = {
    Condition.PENDING: "p",
    Condition.OLDEST_PENDING: "o",
    Condition.FAILURE_RATE: "f",
    Condition.WORKERS: "w",
    Condition.DAILY_COMMANDS: "u",
}


@dataclass(frozen=True)
class Checked:
    measures: Measures
    states: dict[str, str]  # condition -> its state as stored (JSON text)


async def check_alerts(
    redis: Redis, settings: Settings, now_ms: int, conditions: set[Condition]
) -> Checked:
    keys = QueueKeys(settings.queue_name)
    script_keys = [
        keys.ready,
        keys.done(JobStatus.COMPLETED),
        keys.done(JobStatus.FAILED),
        keys.workers,
        usage_key(settings.queue_name, utc_day(now_ms)),
        alerts_key(settings.queue_name),
    ]
    wanted = "".join(sorted(_READS[c] for c in conditions if c in _READS))
    args: list[ScriptArg] = [
        wanted,
        now_ms - HOUR_MS,
        now_ms - WORKER_STALE_AFTER_MS,
        SCORE_PRIORITY_STEP,
    ]
    reply = await run_script(
        redis,
        settings,
        load_script("alerts/check_alerts"),
        script_keys,
        args,
        safe_to_repeat=True,
    )
    return _checked(settings, reply, now_ms)


def _checked(settings: Settings, reply: object, now_ms: int) -> Checked:
    items = as_list(reply, "check_alerts")
    if len(items) != 8:
        raise BadRedisReply(f"check_alerts replied {reply!r:.200}")
    pending, heads, completed, failed, live, usage, states, _calls = items
    counts = [
        as_int(value, "check_alerts count") for value in (pending, completed, failed, live, usage)
    ]
    read = [None if value < 0 else value for value in counts]
    pending_now = read[0]
    heads_list = as_list(heads, "check_alerts heads")
    today = utc_day(now_ms)
    commands = (
        None if read[4] is None else read[4] + usage_meter.pending(MeterKey.of(settings), today)
    )
    measures = Measures(
        pending=pending_now,
        oldest_pending_age_ms=oldest_age_ms(heads_list, now_ms) if heads_list else None,
        completed_last_hour=read[1],
        failed_last_hour=read[2],
        live_workers=read[3],
        commands_today=commands,
    )
    return Checked(measures, as_pairs(states, "check_alerts states"))
