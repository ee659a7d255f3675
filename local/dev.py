"""`python -m local.dev` (what `make dev` runs): the whole product on 127.0.0.1.

Starts a real redis-server and the Upstash-compatible gateway (unless `UPSTASH_REDIS_REST_URL`
is already set), serves every function on `--port` (3000), runs a worker with the demo
processor, and prints a dev token with copy-paste curl lines. Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack

import jwt
import uvicorn

from local.redis_server import die_with_parent, stop_process
from local.stack import start_local_stack

DEV_USER_ID = "dev-user"
DEV_TOKEN_LIFETIME_S = 30 * 86400
DEMO_PROCESSOR = "worker.demo:process"
WORKER_STOP_TIMEOUT_S = 15


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--no-worker", action="store_true", help="do not start a worker")
    args = parser.parse_args(argv)
    with ExitStack() as cleanup:
        if not os.environ.get("UPSTASH_REDIS_REST_URL"):
            stack = start_local_stack()
            cleanup.callback(stack.stop)
            os.environ["UPSTASH_REDIS_REST_URL"] = stack.gateway.url
            os.environ["UPSTASH_REDIS_REST_TOKEN"] = stack.gateway.token
        user_token, service_key = _configure_dev_auth()
        if not args.no_worker:
            worker = _start_worker()
            cleanup.callback(stop_process, worker, WORKER_STOP_TIMEOUT_S)
        _print_welcome(args.port, user_token, service_key)
        uvicorn.run(
            "local.dev_server:dev_app",
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            lifespan="off",
        )


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


def _start_worker() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "worker", "--processor", DEMO_PROCESSOR, "--concurrency", "2"]
    return subprocess.Popen(command, preexec_fn=die_with_parent)  # noqa: S603, PLW1509


def _print_welcome(port: int, user_token: str, service_key: str) -> None:
    base = f"http://127.0.0.1:{port}/api"
    print(
        f"""
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
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
