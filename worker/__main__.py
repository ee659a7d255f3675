"""`python -m worker --processor module:function [--concurrency N] [--queue NAME]
[--types TYPE,PREFIX*,...] [--grace-period-s S] [--isolation thread|process]`: run a worker until
SIGTERM or SIGINT, then shut down gracefully (running jobs get the grace period to finish; the
rest are handed back; exit code 0). `--types` claims only jobs of those types (a name ending in
`*`: every type starting with what precedes it); default every type.

Exit code 2: a bad command line or configuration, or a processor that cannot be loaded (with
`--isolation process`, found when the children import it) (`worker_not_started`). Exit code 1, after
one `fatal` log line: what retrying cannot fix, that is a token Upstash refuses (at any time),
or, at start-up, nothing listening at the URL or something that does not answer like Upstash.
An outage after start-up (or a timeout at start-up) is logged and retried with backoff."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from urllib.parse import urlsplit, urlunsplit

from shared.config.settings import get_settings
from shared.errors import AppError, RedisUnavailable, ServerMisconfigured
from shared.queue.backoff import DEFAULT_BASE_MS, DEFAULT_MAX_MS, Backoff
from shared.queue.routing import TypeFilter
from worker.isolation.runner import Isolation
from worker.logs import configure_logging, log_event
from worker.options import WorkerOptions
from worker.processor import ProcessorLoadError
from worker.schedule import IDLE_BEAT_S
from worker.worker import Worker

EXIT_FAILED = 1
EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.split("\n")[0])
    parser.add_argument("--processor", required=True, help="module:function that runs a job")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs run at once (1)")
    parser.add_argument("--queue", default=None, help="queue name (default: QUEUE_NAME)")
    parser.add_argument(
        "--types",
        default=None,
        help="claim only these job types, comma-separated; text.* for every text. type (all)",
    )
    parser.add_argument(
        "--grace-period-s", type=float, default=30.0, help="time running jobs get on shutdown (30)"
    )
    parser.add_argument(
        "--isolation",
        choices=list(Isolation),
        default=Isolation.THREAD,
        help="thread (default): in this process; process: one long-lived child per slot",
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
        settings = get_settings()
        options = WorkerOptions(
            concurrency=args.concurrency,
            queue_name=args.queue,
            grace_period_s=args.grace_period_s,
            backoff=Backoff(base_ms=args.retry_base_ms, max_ms=args.retry_max_ms),
            idle_beat_s=args.idle_beat_s,
            isolation=Isolation(args.isolation),
            types=TypeFilter.parse(args.types) if args.types is not None else TypeFilter(),
        )
        worker = Worker(args.processor, settings, options)
    except (ValueError, ServerMisconfigured) as error:
        log_event("worker_not_started", logging.ERROR, error=str(error))
        return EXIT_USAGE
    try:
        asyncio.run(_serve(worker))
    except ProcessorLoadError as error:  # the children could not import it
        log_event("worker_not_started", logging.ERROR, workerId=worker.id, error=str(error))
        return EXIT_USAGE
    except AppError as error:  # what retrying cannot fix (see Worker.run)
        fields = fatal_fields(error, settings.upstash_url)
        log_event("fatal", logging.ERROR, workerId=worker.id, **fields)
        return EXIT_FAILED
    return 0


def fatal_fields(error: AppError, url: str) -> dict[str, str]:
    """The one log line of a worker that cannot go on: what happened, in the variables' names,
    and the error itself as `detail`. Never the token: the errors carry Upstash's reply, and
    the URL is shown without user info or query."""
    where = f"UPSTASH_REDIS_REST_URL={_without_secrets(url)}"
    if isinstance(error, ServerMisconfigured):
        reason = "unauthorized"
        message = (
            "Upstash refused the token in UPSTASH_REDIS_REST_TOKEN: check that it is the REST "
            f"token of the database at {where}"
        )
    elif isinstance(error, RedisUnavailable):
        reason, message = "unreachable", f"cannot reach Upstash at {where}"
    else:
        reason, message = "unexpected_reply", f"{where} does not answer like Upstash"
    return {"reason": reason, "error": message, "detail": str(error)}


def _without_secrets(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


async def _serve(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, worker.stop)
    await worker.run()


if __name__ == "__main__":
    sys.exit(main())
