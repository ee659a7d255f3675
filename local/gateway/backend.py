"""The gateway's side of Redis: raw RESP2 exchanges on pooled redis-py connections.

redis-py's response callbacks are bypassed (no client object is used), so what Redis sent is
what the gateway relays: flat HGETALL arrays, scores as strings, status replies as bytes.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from redis._parsers import _AsyncRESP2Parser
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from local.gateway.protocol import Command, Reply

CONNECT_TIMEOUT_S = 2.0
# Errors that mean Redis itself cannot be reached; the app answers them with 503.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class _FullErrorParser(_AsyncRESP2Parser):
    """Keeps Redis's error text whole: redis-py strips prefixes such as `NOSCRIPT `."""

    @classmethod
    def parse_error(cls, response: str) -> ResponseError:
        return ResponseError(response)


def pack_commands(commands: Sequence[Command]) -> bytes:
    """RESP arrays of bulk strings, packed here so arguments reach Redis byte for byte."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for argument in command:
            parts.append(b"$%d\r\n%b\r\n" % (len(argument), argument))
    return b"".join(parts)


class RedisBackend:
    def __init__(self, redis_url: str) -> None:
        self._pool = ConnectionPool.from_url(
            redis_url,
            protocol=2,
            parser_class=_FullErrorParser,
            driver_info=None,  # no CLIENT SETINFO: tests count every command Redis runs
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=None,  # blocking commands (BLPOP ...) may wait as long as asked
        )

    async def close(self) -> None:
        await self._pool.aclose()

    async def execute(self, commands: Sequence[Command]) -> list[Reply]:
        """Send all commands in one write on one connection and read one reply for each."""
        async with self._connection() as connection:
            await connection.send_packed_command(pack_commands(commands), check_health=False)
            return [await _read(connection) for _ in commands]

    async def transaction(self, commands: Sequence[Command]) -> Reply:
        """MULTI, the commands, EXEC: the EXEC reply, or the first error that aborted it."""
        replies = await self.execute([[b"MULTI"], *commands, [b"EXEC"]])
        queued_error = next((r for r in replies[1:-1] if isinstance(r, ResponseError)), None)
        exec_reply = replies[-1]
        if isinstance(exec_reply, ResponseError) and queued_error is not None:
            return ResponseError(f"{exec_reply} ({queued_error})")
        return exec_reply

    @asynccontextmanager
    async def subscription(self, command: Command) -> AsyncIterator[Connection]:
        """A connection of its own in subscribe mode; it is closed, never reused, afterwards."""
        connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.connect()
            await connection.send_packed_command(pack_commands([command]), check_health=False)
            yield connection
        finally:
            await connection.disconnect()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            yield connection
        except BaseException:
            # Replies may still be in flight: never hand this connection to another request.
            await connection.disconnect()
            raise
        finally:
            await self._pool.release(connection)


async def _read(connection: Connection) -> Reply:
    try:
        reply: Reply = await connection.read_response(disable_decoding=True)
    except ResponseError as error:
        return error
    return reply


async def read_push(connection: Connection) -> Reply:
    """The next pub/sub message, waiting as long as it takes."""
    reply: Reply = await connection.read_response(disable_decoding=True, timeout=math.inf)
    return reply
