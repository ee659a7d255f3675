"""A TCP proxy in front of the gateway that can stop accepting connections, to show what a
slow or overloaded Upstash does to the client: while `accepting` is False, new connections wait
in (and then overflow) a one-slot accept queue, so clients hang in connect or in read."""

from __future__ import annotations

import asyncio
import contextlib
import socket


class SlowProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepting = asyncio.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=1)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._loop_task = asyncio.ensure_future(self._accept_loop())

    async def close(self) -> None:
        for task in [self._loop_task, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *[t for t in [self._loop_task, *self._tasks] if t], return_exceptions=True
        )
        self._listener.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.accepting.wait()
            client, _ = await loop.sock_accept(self._listener)
            task = asyncio.ensure_future(self._relay(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _relay(self, client: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=client)
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for stream in (writer, upstream_writer):
                stream.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()
