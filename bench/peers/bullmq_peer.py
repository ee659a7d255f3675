"""BullMQ's Python package 3.4: `Queue.add` and a `Worker` with a no-op async processor and its
`concurrency` option, BullMQ's defaults otherwise (an idle worker blocks on its marker key for up
to `drainDelay` = 5 s, and checks for stalled jobs every 30 s).

`python -m bench.peers.bullmq_peer produce URL | work URL CONCURRENCY`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from bullmq import Queue, Worker

from bench.peers.pickups import record_start, serve_producer

QUEUE = "bench"


async def noop(job: Any, _token: str) -> None:
    record_start(job.data)


async def produce(url: str) -> None:
    queue = Queue(QUEUE, {"connection": url})

    async def enqueue(_index: int, data: dict[str, Any]) -> None:
        await queue.add("noop", data)

    await serve_producer(enqueue)
    await queue.close()


async def work(url: str, concurrency: int) -> None:
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
    worker = Worker(QUEUE, noop, {"connection": url, "concurrency": concurrency})
    await stop.wait()
    await worker.close()


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        asyncio.run(produce(sys.argv[2]))
    else:
        asyncio.run(work(sys.argv[2], int(sys.argv[3])))
