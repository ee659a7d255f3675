"""What every design's producer and processor share (standard library only: arq's producer and
worker import it from .venv-arq).

Each job's data is `{"i": index, "t": epoch ms just before the enqueue call}`; the processor
appends `index enqueued_ms started_ms` to the local file named by `BENCH_PICKUP_LOG`, so the
pickup bookkeeping costs no Redis command. A producer reads `one` or `many N` lines on stdin,
enqueues that many jobs one after another and answers `ok` on stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Enqueue = Callable[[int, dict[str, Any]], Awaitable[None]]


def now_ms() -> float:
    return time.time() * 1000


def record_start(data: dict[str, Any]) -> None:
    """Called first thing by each no-op processor: one line, one `write` (atomic in append mode,
    so eight worker processes can share the file)."""
    line = f"{data['i']} {data['t']} {now_ms():.3f}\n"
    with Path(os.environ["BENCH_PICKUP_LOG"]).open("a", encoding="ascii") as log:
        log.write(line)


def read_log(path: Path) -> list[tuple[int, float, float]]:
    """(index, enqueued_ms, started_ms) per job started so far."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="ascii").splitlines():
        index, enqueued, started = line.split()
        rows.append((int(index), float(enqueued), float(started)))
    return rows


async def serve_producer(enqueue: Enqueue) -> None:
    """Answer `one` / `many N` commands from stdin until it closes."""
    loop = asyncio.get_running_loop()
    index = 0
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command, _, count = line.strip().partition(" ")
        for _ in range(int(count) if command == "many" else 1):
            await enqueue(index, {"i": index, "t": now_ms()})
            index += 1
        print("ok", flush=True)
