"""`ChildHandle`: the worker's side of one slot's child process (spawned, so the worker's
threads and event loop are never forked): start it, learn when the processor is loaded, run a
job in it, and stop or kill it.

Replies arrive through a reader thread (a large result never blocks the event loop); the
child's exit through its sentinel on the loop. A child that exits without answering a job
has crashed (`ChildDied`); its answer may still be in the pipe when the exit is seen, so the
pipe is read to its end (briefly) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from shared.queue.models import Progress
from worker.isolation.child import child_main
from worker.isolation.protocol import LoadFailed, Ready, RunJob
from worker.processor import AttemptResult, Failed, ProcessorLoadError, Succeeded

KILL_WAIT_S = 5.0  # after SIGKILL: the kernel ends it at once, this only bounds the wait
REAP_WAIT_S = 1.0  # bounds the wait for an exited child's status (it takes microseconds)
PIPE_DRAIN_S = 0.5  # an exited child's last answer is read within this
_EOF = object()


class ChildDied(Exception):
    """The child exited while it ran a job, without answering."""


class ChildHandle:
    """Made from inside the event loop: the child starts at once."""

    def __init__(self, spec: str, name: str) -> None:
        context = multiprocessing.get_context("spawn")
        jobs_reader, self._jobs = context.Pipe(duplex=False)
        self._replies, replies_writer = context.Pipe(duplex=False)
        self._process = context.Process(
            target=child_main, args=(spec, jobs_reader, replies_writer, os.getpid()), name=name
        )
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._exited: asyncio.Future[int | None] = self._loop.create_future()
        self._eof: asyncio.Future[None] = self._loop.create_future()
        self._answer: asyncio.Future[AttemptResult] | None = None
        self._not_ready: asyncio.Task[None] | None = None
        self._on_progress: Callable[[Progress], None] = lambda _: None
        self.clean = True  # no job was sent that it did not answer
        self._process.start()
        self.pid: int = self._process.pid or 0
        self._exit_code: int | None = None
        for end in (jobs_reader, replies_writer):  # only the child holds these now
            end.close()
        self._loop.add_reader(self._process.sentinel, self._on_exit)
        reader = threading.Thread(target=self._receive, name=f"{name}-replies", daemon=True)
        reader.start()

    async def ready(self) -> None:
        """Once the processor is imported; ProcessorLoadError if the child cannot load it."""
        await asyncio.shield(self._ready)

    async def run(self, request: RunJob, on_progress: Callable[[Progress], None]) -> AttemptResult:
        """Send one job and wait for its answer; ChildDied if the child exits first."""
        answer: asyncio.Future[AttemptResult] = self._loop.create_future()
        self._answer = answer
        self._on_progress = on_progress
        self.clean = False
        try:
            self._jobs.send(request)
        except OSError as error:  # the pipe is closed: the child is gone
            raise ChildDied(f"the processor's process is gone: {error}") from None
        either: set[asyncio.Future[Any]] = {answer, self._exited}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            await self._drained()
        if not answer.done():
            raise ChildDied(f"the processor's process {self.describe_exit()}")
        self.clean = True
        return answer.result()

    def describe_exit(self) -> str:
        code = self._exit_code
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    async def kill(self, grace_s: float) -> None:
        """SIGTERM to the child's process group; SIGKILL if it has not exited after `grace_s`."""
        if not self.exited:
            self._signal(signal.SIGTERM)
            if not await self._exits_within(grace_s):
                self._signal(signal.SIGKILL)
                await self._exits_within(KILL_WAIT_S)
        self._signal(signal.SIGKILL)  # whatever the processor started in its group
        self._jobs.close()

    async def stop(self, grace_s: float) -> None:
        """Close its job pipe (an idle child exits at once); kill it if it lingers."""
        self._jobs.close()
        if not await self._exits_within(grace_s):
            await self.kill(0.0)

    @property
    def exited(self) -> bool:
        return self._exited.done()

    async def _exits_within(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exited), timeout_s)
        return self._exited.done()

    async def _drained(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._eof), PIPE_DRAIN_S)

    def _signal(self, number: int) -> None:
        """To the child's group; to the child itself if it has not made its group yet. Never
        to its pid once it was reaped (the pid may belong to another process by then)."""
        try:
            os.killpg(self.pid, number)
        except ProcessLookupError:
            if not self.exited:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, number)
        except PermissionError:  # the group id was taken by another user's process
            pass

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._process.sentinel)
        # Reap it: a blocking wait, as its pipes close just before it becomes waitable.
        self._process.join(REAP_WAIT_S)
        self._exit_code = self._process.exitcode
        if self._exit_code is not None:
            self._process.close()  # its sentinel and the rest: pid and exit code are kept
        if not self._exited.done():
            self._exited.set_result(self._exit_code)
        if not self._ready.done():  # its LoadFailed may still be in the pipe
            self._not_ready = self._loop.create_task(self._fail_to_be_ready())

    async def _fail_to_be_ready(self) -> None:
        await self._drained()
        if not self._ready.done():
            message = f"the processor's process {self.describe_exit()} before it was ready"
            self._ready.set_exception(ProcessorLoadError(message))
            self._ready.exception()  # retrieved: a replacement nobody awaited is not an error

    def _receive(self) -> None:
        """The reader thread: every reply, then EOF, handed to the loop."""
        try:
            while True:
                self._post(self._replies.recv())
        except (EOFError, OSError):
            self._post(_EOF)
        finally:
            self._replies.close()

    def _post(self, message: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            self._loop.call_soon_threadsafe(self._on_message, message)

    def _on_message(self, message: object) -> None:
        if isinstance(message, Progress):
            self._on_progress(message)
        elif isinstance(message, Succeeded | Failed):
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(message)
        elif isinstance(message, Ready) and not self._ready.done():
            self._ready.set_result(None)
        elif isinstance(message, LoadFailed) and not self._ready.done():
            self._ready.set_exception(ProcessorLoadError(message.message))
            self._ready.exception()
        elif message is _EOF and not self._eof.done():
            self._eof.set_result(None)
