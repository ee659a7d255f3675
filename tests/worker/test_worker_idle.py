"""An idle worker is cheap and still quick: it beats rarely (4 billed commands each), and a job
enqueued meanwhile starts on the event stream's message, not on the next beat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from shared import clock
from shared.queue.stats import WORKER_STALE_AFTER_MS, queue_stats
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, wait_for
from worker.schedule import IDLE_BEAT_COMMANDS, IDLE_BEAT_S, idle_commands_per_day

DAILY_BUDGET = 3_000
MEASURED_BEATS = 3


@dataclass(frozen=True)
class Snapshot:
    billed: int
    calls: dict[str, int]


def snapshot(direct: redis.Redis, billed_commands: Callable[[], int]) -> Snapshot:
    stats = direct.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}
    return Snapshot(billed=billed_commands(), calls=calls)


async def test_an_idle_worker_costs_four_commands_per_beat_well_under_the_daily_budget(
    queue: QueueHarness, start_worker: StartWorker, billed_commands: Callable[[], int]
) -> None:
    # Beats compressed to one a second, to count what one idle beat costs.
    await start_worker("processors:record", "--idle-beat-s", "1")
    heartbeats = snapshot(queue.direct, billed_commands).calls.get("hset", 0)

    def after_beats(count: int) -> Snapshot | None:
        now = snapshot(queue.direct, billed_commands)
        return now if now.calls.get("hset", 0) >= heartbeats + count else None

    first = await wait_for(lambda: after_beats(1), what="a beat")
    last = await wait_for(lambda: after_beats(1 + MEASURED_BEATS), what="more beats")

    per_beat = (last.billed - first.billed) / MEASURED_BEATS
    assert per_beat == IDLE_BEAT_COMMANDS == 4
    assert last.calls["evalsha"] - first.calls["evalsha"] == MEASURED_BEATS, "no claims when idle"
    assert idle_commands_per_day() <= DAILY_BUDGET
    assert per_beat * 86_400 / IDLE_BEAT_S < DAILY_BUDGET * 2 / 3


async def test_a_job_enqueued_while_idle_starts_on_the_event_not_on_a_beat(
    queue: QueueHarness, start_worker: StartWorker, tmp_path
) -> None:
    await start_worker("processors:record", env={"RECORD_DIR": str(tmp_path)})
    await wait_for(lambda: queue.direct.hgetall(queue.keys.workers))
    (heartbeat_before,) = queue.direct.hvals(queue.keys.workers)

    job_id = await queue.enqueue(now_ms=clock.now_ms())

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")
    (heartbeat_after,) = queue.direct.hvals(queue.keys.workers)
    assert heartbeat_after == heartbeat_before, "no beat ran between the enqueue and the start"


async def test_a_delayed_job_starts_when_due_without_waiting_for_the_idle_beat(
    queue: QueueHarness, start_worker: StartWorker, tmp_path
) -> None:
    await start_worker("processors:record", env={"RECORD_DIR": str(tmp_path)})
    job_id = await queue.enqueue(now_ms=clock.now_ms(), delayMs=1_000)

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")

    stored = queue.job(job_id)
    assert int(stored["startedAt"]) >= int(stored["runAt"])


async def test_a_running_worker_shows_in_stats_and_a_dead_one_drops_out(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    worker = await start_worker("processors:record", "--concurrency", "3")
    await wait_for(lambda: queue.direct.hgetall(queue.keys.workers))

    stats = await queue_stats(queue.redis, queue.settings, now_ms=clock.now_ms())
    (info,) = stats.workers
    assert (info.active, info.concurrency) == (0, 3)

    worker.stop()  # SIGKILL: no sign-off
    later = info.last_seen_ms + WORKER_STALE_AFTER_MS + 1
    assert (await queue_stats(queue.redis, queue.settings, now_ms=later)).workers == []
