"""A TCP proxy in front of the gateway that injects the faults a real Upstash can have.

Modes, changeable at any time (new connections see the new mode):
- `pass`: relay both ways;
- `hold`: stop accepting, so new connections wait in (and then overflow) a one-slot accept
  queue: clients hang in connect or in read;
- `stall`: accept and read the request, never answer;
- `http500`: answer every request with an HTTP 500 and a text body;
- `cut`: relay the request, then close the connection half-way through the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Literal

Mode = Literal["pass", "hold", "stall", "http500", "cut"]
HTTP_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\ninternal server error"
)


class FaultProxy:
    def __init__(self, target_port: int, mode: Mode = "pass") -> None:
        self.target_port = target_port
        self._mode: Mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=1)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None
        self._not_holding = asyncio.Event()
        self._parked: list[socket.socket] = []  # accepted just as a hold began
        self.mode = mode

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        """Takes effect for the next connection."""
        self._mode = mode
        if mode == "hold":
            self._not_holding.clear()
        else:
            self._not_holding.set()
            self._close_parked()

    def _close_parked(self) -> None:
        for client in self._parked:
            client.close()
        self._parked.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._accepting = asyncio.ensure_future(self._accept_loop())

    async def close(self) -> None:
        tasks = [task for task in (self._accepting, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._close_parked()
        self._listener.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._not_holding.wait()
            client, _ = await loop.sock_accept(self._listener)
            if self._mode == "hold":  # the hold began while this accept was on its way
                self._parked.append(client)
                continue
            task = asyncio.ensure_future(self._serve(client, self._mode))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, client: socket.socket, mode: Mode) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=client)
        except BaseException:
            client.close()
            raise
        try:
            if mode == "stall":
                await reader.read(65536)
                await asyncio.Event().wait()
            elif mode == "http500":
                await reader.read(65536)
                writer.write(HTTP_500)
                await writer.drain()
            else:
                await self._relay(reader, writer, cut=mode == "cut")
        except OSError:
            pass  # the client went away: nothing to relay
        finally:
            await _close(writer)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, cut: bool
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            if cut:
                up_writer.write(await reader.read(65536))
                answer = await up_reader.read(65536)
                writer.write(answer[: len(answer) // 2])
                await writer.drain()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            await _close(up_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
