"""`python -m worker --processor module:function [--concurrency N] [--queue NAME]
[--grace-period-s S]`: run a worker until SIGTERM or SIGINT, then shut down gracefully
(running jobs get the grace period to finish; the rest are handed back; exit code 0)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from shared.config.settings import get_settings
from shared.errors import AppError, ServerMisconfigured
from shared.queue.backoff import DEFAULT_BASE_MS, DEFAULT_MAX_MS, Backoff
from worker.logs import configure_logging, log_event
from worker.processor import load_processor
from worker.schedule import IDLE_BEAT_S
from worker.worker import Worker, WorkerOptions

EXIT_FAILED = 1
EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.split("\n")[0])
    parser.add_argument("--processor", required=True, help="module:function that runs a job")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs run at once (1)")
    parser.add_argument("--queue", default=None, help="queue name (default: QUEUE_NAME)")
    parser.add_argument(
        "--grace-period-s", type=float, default=30.0, help="time running jobs get on shutdown (30)"
    )
    parser.add_argument("--retry-base-ms", type=int, default=DEFAULT_BASE_MS)
    parser.add_argument("--retry-max-ms", type=int, default=DEFAULT_MAX_MS)
    parser.add_argument(
        "--idle-beat-s", type=float, default=IDLE_BEAT_S, help=argparse.SUPPRESS
    )  # for measurements: the idle heartbeat period
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        processor = load_processor(args.processor)
        settings = get_settings()
        options = WorkerOptions(
            concurrency=args.concurrency,
            queue_name=args.queue,
            grace_period_s=args.grace_period_s,
            backoff=Backoff(base_ms=args.retry_base_ms, max_ms=args.retry_max_ms),
            idle_beat_s=args.idle_beat_s,
        )
        worker = Worker(processor, settings, options)
    except (ValueError, ServerMisconfigured) as error:
        log_event("worker_not_started", logging.ERROR, error=str(error))
        return EXIT_USAGE
    try:
        asyncio.run(_serve(worker))
    except AppError as error:  # e.g. Upstash refused the token: retrying cannot help
        log_event("worker_failed", logging.ERROR, error=str(error))
        return EXIT_FAILED
    return 0


async def _serve(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, worker.stop)
    await worker.run()


if __name__ == "__main__":
    sys.exit(main())
