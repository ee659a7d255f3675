"""Start the local Upstash stand-in: a real redis-server with the REST gateway in front of it.

Used by `python -m local.dev` and by the test fixtures, so both run exactly the same stack.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass

from local.redis_server import (
    RedisServer,
    die_with_parent,
    free_port,
    start_redis_server,
    stop_process,
)

GATEWAY_START_TIMEOUT_S = 15.0


class GatewayStartError(RuntimeError):
    """The gateway process exited or never answered."""


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    read_only_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def start_gateway(redis_url: str, port: int | None = None) -> Gateway:
    port = port or free_port()
    token = "dev-" + secrets.token_urlsafe(16)
    read_only_token = "dev-ro-" + secrets.token_urlsafe(16)
    command = [
        sys.executable, "-m", "local.gateway",
        "--port", str(port),
        "--redis", redis_url,
        "--token", token,
        "--read-only-token", read_only_token,
    ]  # fmt: skip
    process = subprocess.Popen(command, preexec_fn=die_with_parent)  # noqa: S603, PLW1509
    gateway = Gateway(process=process, port=port, token=token, read_only_token=read_only_token)
    _wait_until_serving(gateway)
    return gateway


def _wait_until_serving(gateway: Gateway) -> None:
    deadline = time.monotonic() + GATEWAY_START_TIMEOUT_S
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{gateway.url}/ping", headers={"Authorization": f"Bearer {gateway.token}"}
    )
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise GatewayStartError(f"local.gateway exited with code {gateway.process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    gateway.stop()
    raise GatewayStartError(f"local.gateway did not answer on port {gateway.port} in time")


@dataclass
class LocalStack:
    redis: RedisServer
    gateway: Gateway

    def stop(self) -> None:
        self.gateway.stop()
        self.redis.stop()


def start_local_stack() -> LocalStack:
    with ExitStack() as cleanup:
        redis = start_redis_server()
        cleanup.callback(redis.stop)
        gateway = start_gateway(redis.url)
        cleanup.pop_all()
        return LocalStack(redis=redis, gateway=gateway)
