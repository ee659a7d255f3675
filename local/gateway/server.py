"""`python -m local.gateway`: the Upstash REST protocol in front of a real Redis, on loopback.

    python -m local.gateway --port 8079 --redis redis://127.0.0.1:6379 --token TOKEN \
        [--read-only-token TOKEN] [--max-request-bytes N]
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Sequence

import uvicorn

from local.gateway.app import DEFAULT_MAX_REQUEST_BYTES, GatewayApp, GatewayConfig

HOST = "127.0.0.1"
# After SIGTERM, requests still running get this long before they are cancelled.
GRACEFUL_SHUTDOWN_S = 2


class GatewayServer(uvicorn.Server):
    """A uvicorn server that ends open subscriber streams first when it shuts down."""

    def __init__(self, config: uvicorn.Config, app: GatewayApp) -> None:
        super().__init__(config)
        self._gateway = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._gateway.begin_shutdown()
        await super().shutdown(sockets)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.gateway", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True, help="redis://host:port[/db]")
    parser.add_argument("--token", required=True)
    parser.add_argument("--read-only-token")
    parser.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    return parser.parse_args(argv)


def build_server(args: argparse.Namespace) -> GatewayServer:
    app = GatewayApp(
        GatewayConfig(
            redis_url=args.redis,
            token=args.token,
            read_only_token=args.read_only_token,
            max_request_bytes=args.max_request_bytes,
        )
    )
    config = uvicorn.Config(
        app,
        host=HOST,
        port=args.port,
        http="h11",
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return GatewayServer(config, app)


def main(argv: Sequence[str] | None = None) -> None:
    build_server(parse_args(argv)).run()


if __name__ == "__main__":
    main()
