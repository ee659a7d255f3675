"""`python -m local.dev` (what `make dev` runs): the whole product on 127.0.0.1.

Claims `--port` (3000) first, so a busy port fails before anything starts. Then starts a real
redis-server and the Upstash-compatible gateway (unless `UPSTASH_REDIS_REST_URL` is already
set), runs a worker (the demo processor, `--processor module:fn`, or none with `--no-worker`),
prints a dev token, copy-paste curl lines and the env lines a second terminal needs to run its
own worker, and serves every function. Ctrl-C (or SIGTERM) stops all of it, the worker first.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import uvicorn

from local.redis_server import die_with_parent, free_port, stop_process
from local.stack import start_local_stack

HOST = "127.0.0.1"
DEFAULT_PORT = 3000
LISTEN_BACKLOG = 2048  # uvicorn's default
PORTS_TRIED_FOR_A_SUGGESTION = 20
DEV_USER_ID = "dev-user"
DEV_TOKEN_LIFETIME_S = 30 * 86400
DEMO_PROCESSOR = "worker.demo:process"
WORKER_CONCURRENCY = 2
WORKER_STOP_TIMEOUT_S = 15
EXIT_PORT_UNAVAILABLE = 1


class PortUnavailable(RuntimeError):
    """The port for the functions cannot be listened on; the message says what to try."""


@dataclass(frozen=True)
class Database:
    """Where the functions and workers keep the queue. `token` is None for the user's own
    database: theirs is never printed."""

    url: str
    token: str | None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        listener = claim_port(args.port)
    except PortUnavailable as error:
        print(f"local.dev: {error}", file=sys.stderr)
        return EXIT_PORT_UNAVAILABLE
    processor = None if args.no_worker else args.processor
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop in order, as on Ctrl-C
    with contextlib.suppress(KeyboardInterrupt), ExitStack() as cleanup:
        cleanup.callback(listener.close)
        database = _open_database(cleanup)
        user_token, service_key = _configure_dev_auth()
        if processor is not None:
            worker = _start_worker(processor)
            cleanup.callback(stop_process, worker, WORKER_STOP_TIMEOUT_S)
        port: int = listener.getsockname()[1]
        print(_welcome(port, user_token, service_key, database, processor), flush=True)
        _serve(listener)
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.dev", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="for the functions (3000)")
    parser.add_argument("--no-worker", action="store_true", help="do not start a worker")
    parser.add_argument(
        "--processor",
        default=DEMO_PROCESSOR,
        metavar="MODULE:FN",
        help=f"what the dev worker runs ({DEMO_PROCESSOR})",
    )
    return parser.parse_args(argv)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535; 0: any free one)")
    return int(text)


def claim_port(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port`, bound as uvicorn binds (SO_REUSEADDR: a previous
    run's connections in TIME_WAIT do not count, a listening process does). Connections wait
    in its backlog until the functions are served."""
    try:
        listener = _bind(port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            suggestion = _free_port_after(port)
            raise PortUnavailable(
                f"port {port} is in use; try make dev PORT={suggestion}"
                f" (python -m local.dev --port {suggestion})"
            ) from None
        raise PortUnavailable(f"cannot listen on {HOST}:{port}: {error.strerror}") from None
    return listener


def _bind(port: int) -> socket.socket:
    """Bound and listening, or OSError."""
    candidate = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        candidate.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        candidate.bind((HOST, port))
        candidate.listen(LISTEN_BACKLOG)
    except OSError:
        candidate.close()
        raise
    return candidate


def _free_port_after(port: int) -> int:
    for candidate in range(port + 1, min(port + PORTS_TRIED_FOR_A_SUGGESTION, 65535) + 1):
        with contextlib.suppress(OSError), _bind(candidate):
            return candidate
    return free_port()


def _open_database(cleanup: ExitStack) -> Database:
    """The user's configured database, else a local Redis behind the gateway (stopped by
    `cleanup`), exported for the functions and the worker."""
    configured = os.environ.get("UPSTASH_REDIS_REST_URL")
    if configured:
        return Database(url=configured, token=None)
    stack = start_local_stack()
    cleanup.callback(stack.stop)
    os.environ["UPSTASH_REDIS_REST_URL"] = stack.gateway.url
    os.environ["UPSTASH_REDIS_REST_TOKEN"] = stack.gateway.token
    return Database(url=stack.gateway.url, token=stack.gateway.token)


def _configure_dev_auth() -> tuple[str, str]:
    """Dev credentials unless the environment already has some: a user JWT and a service key."""
    secret = os.environ.setdefault("AUTH_JWT_SECRET", "dev-secret-" + secrets.token_hex(16))
    service_key = os.environ.get("DEV_SERVICE_KEY") or "dev-service-" + secrets.token_hex(12)
    digest = hashlib.sha256(service_key.encode()).hexdigest()
    existing = os.environ.get("AUTH_API_KEYS", "")
    os.environ["AUTH_API_KEYS"] = ",".join(part for part in (existing, digest) if part)
    now_s = int(time.time())
    user_token = jwt.encode(
        {"sub": DEV_USER_ID, "iat": now_s, "exp": now_s + DEV_TOKEN_LIFETIME_S},
        secret,
        algorithm="HS256",
    )
    return user_token, service_key


def _start_worker(processor: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "worker",
        "--processor", processor,
        "--concurrency", str(WORKER_CONCURRENCY),
    ]  # fmt: skip
    return subprocess.Popen(command, preexec_fn=die_with_parent)  # noqa: S603, PLW1509


def _serve(listener: socket.socket) -> None:
    config = uvicorn.Config(
        "local.dev_server:dev_app", host=HOST, log_level="warning", lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[listener])


def _welcome(
    port: int, user_token: str, service_key: str, database: Database, processor: str | None
) -> str:
    base = f"http://{HOST}:{port}/api"
    return f"""
AI job queue running on {base}   (Ctrl-C stops everything)

  Dev user token (sub={DEV_USER_ID}):  export TOKEN={user_token}
  Service key (admin, stats):          export KEY={service_key}

  curl -s -X POST {base}/enqueue -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{{"type":"image.generate","data":{{"prompt":"a red fox"}}}}'
  curl -s "{base}/status?id=<id from above>" -H "Authorization: Bearer $TOKEN"
  curl -s {base}/stats -H "Authorization: Bearer $KEY"
  curl -s -X POST {base}/ratelimit-check -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"policy":"user","consume":false}}'

{_worker_lines(processor)}

{_second_worker_lines(database)}
"""


def _worker_lines(processor: str | None) -> str:
    if processor is None:
        return "  Worker: none (WORKER=0). Jobs stay pending until you start one, as below."
    return (
        f"  Worker: {processor}, {WORKER_CONCURRENCY} jobs at once; it competes for jobs with any"
        " worker you start.\n  make dev WORKER=0 runs none; make dev PROCESSOR=yourmodule:fn"
        " runs yours instead."
    )


def _second_worker_lines(database: Database) -> str:
    command = f"    {shlex.quote(_python_command())} -m worker --processor yourmodule:fn"
    if database.token is None:
        return (
            "  Your own worker, from a second terminal: this stack uses your configured"
            f" database\n  ({_without_credentials(database.url)}), so give it the same"
            f" UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN:\n{command}"
        )
    env = {"UPSTASH_REDIS_REST_URL": database.url, "UPSTASH_REDIS_REST_TOKEN": database.token}
    if os.environ.get("QUEUE_NAME"):
        env["QUEUE_NAME"] = os.environ["QUEUE_NAME"]
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return (
        "  Your own worker, from a second terminal (the gateway token is a local throwaway):"
        f"\n    export {exports}\n{command}"
    )


def _python_command() -> str:
    """This interpreter, relative to the current directory when it is inside it
    (`.venv/bin/python`)."""
    executable = Path(sys.executable)
    with contextlib.suppress(ValueError):
        return str(executable.relative_to(Path.cwd()))
    return str(executable)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


if __name__ == "__main__":
    sys.exit(main())
