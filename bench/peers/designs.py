"""The five designs: how to start each one's worker and producer, how to count its finished jobs
(read straight from the server, only outside the metered windows), and how its idle worker is
measured (in the window as it is, or with its idle cycle compressed, then scaled)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.peers.processes import ROOT

MAIN_PYTHON = sys.executable
ARQ_PYTHON = str(ROOT / ".venv-arq" / "bin" / "python")
DAY_S = 86_400
OURS_COMPRESSED_BEAT_S = 2
RQ_COMPRESSED_TTL_S = 17  # dequeue timeout = ttl - 15 = 2 s
RQ_DEFAULT_DEQUEUE_S = 405  # worker_ttl 420 - 15


@dataclass(frozen=True)
class Compressed:
    """An idle cycle longer than the window, run shorter: `counter` counts cycles (one call of
    that command per cycle), `per_day` scales the commands of one cycle to the default period."""

    args: tuple[str, ...]
    counter: str
    per_day: Callable[[float], int]
    how: str


@dataclass(frozen=True)
class Design:
    name: str
    python: str
    module: str
    over_rest: bool  # through the REST gateway (else RESP over TCP to the server)
    finished: Callable[[Any], int]
    concurrency_how: str
    processes_per_slot: bool = False  # RQ: one worker process per unit of concurrency
    poll_s: float = 0.0  # a polling worker's period: jobs are spaced at a random phase of it
    compressed: Compressed | None = None
    # a command counted once per blocking call the client cut off before the server answered
    # (such a call never reaches INFO commandstats, but was sent, so it is billed)
    cut_off_marker: str | None = None

    def worker_commands(self, url: str, concurrency: int, idle: bool = False) -> list[list[str]]:
        extra = list(self.compressed.args) if idle and self.compressed else []
        if self.name == "ours":
            processor = "bench.peers.ours_peer:process"
            command = [self.python, "-m", "worker", "--processor", processor]
            return [[*command, "--concurrency", str(concurrency), *extra]]
        command = [self.python, "-m", self.module, "work", *([] if self.over_rest else [url])]
        if self.processes_per_slot:
            return [[*command, *extra]] * concurrency
        return [[*command, str(concurrency), *extra]]

    def producer_command(self, url: str) -> list[str]:
        return [self.python, "-m", self.module, "produce", *([] if self.over_rest else [url])]


def ours_per_day(per_beat: float) -> int:
    from worker.schedule import IDLE_BEAT_S, idle_commands_per_day

    return idle_commands_per_day(IDLE_BEAT_S, per_beat)


def count_keys(direct: Any, pattern: str) -> int:
    return sum(1 for _ in direct.scan_iter(pattern, count=1000))


def reference_finished(direct: Any) -> int:
    keys = list(direct.scan_iter("job:*", count=1000))
    return sum(b"completed" in (value or b"") for value in direct.mget(keys)) if keys else 0


DESIGNS = (
    Design(
        "ours",
        MAIN_PYTHON,
        "bench.peers.ours_peer",
        over_rest=True,
        finished=lambda direct: direct.zcard("aq:{ai-queue}:done:completed"),
        concurrency_how="one worker, --concurrency 8",
        compressed=Compressed(
            ("--idle-beat-s", str(OURS_COMPRESSED_BEAT_S)),
            "cmdstat_hset",
            ours_per_day,
            f"beats run every {OURS_COMPRESSED_BEAT_S} s, commands per beat x the idle beats of "
            "a day (worker.schedule.IDLE_BEAT_S) + hourly housekeeping "
            "(worker.schedule.idle_commands_per_day)",
        ),
    ),
    Design(
        "arq",
        ARQ_PYTHON,
        "bench.peers.arq_peer",
        over_rest=False,
        finished=lambda direct: count_keys(direct, "arq:result:*"),
        concurrency_how="one worker, max_jobs=8",
        poll_s=0.5,  # arq's poll_delay
    ),
    Design(
        "rq",
        MAIN_PYTHON,
        "bench.peers.rq_peer",
        over_rest=False,
        finished=lambda direct: direct.zcard("rq:finished:bench"),
        concurrency_how="8 SimpleWorker processes",
        processes_per_slot=True,
        compressed=Compressed(
            (str(RQ_COMPRESSED_TTL_S),),
            "cmdstat_blmove",
            lambda per_cycle: round(per_cycle * DAY_S / RQ_DEFAULT_DEQUEUE_S),
            f"worker_ttl {RQ_COMPRESSED_TTL_S} s (a 2 s BLMOVE), commands per cycle x "
            f"{DAY_S // RQ_DEFAULT_DEQUEUE_S} cycles/day of the default 405 s BLMOVE "
            "(registry maintenance every 10 min not included)",
        ),
    ),
    Design(
        "bullmq",
        MAIN_PYTHON,
        "bench.peers.bullmq_peer",
        over_rest=False,
        finished=lambda direct: direct.zcard("bull:bench:completed"),
        concurrency_how="one worker, concurrency=8",
        # its client gives up each idle 5 s BZPOPMIN at the same moment (socket timeout), drops
        # the connection and reconnects (HELLO, CLIENT SETNAME, 2 x CLIENT SETINFO) a few s later
        cut_off_marker="cmdstat_hello",
    ),
    Design(
        "reference",
        MAIN_PYTHON,
        "bench.peers.reference_peer",
        over_rest=True,
        finished=reference_finished,
        concurrency_how="one worker, 8 RPOP loops",
        poll_s=1.0,  # bench.peers.reference_peer.POLL_INTERVAL_S
    ),
)


def pythons_missing() -> list[str]:
    return [design.python for design in DESIGNS if not Path(design.python).exists()]
