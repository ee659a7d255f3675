"""Loading a processor (`module:function`) and running one attempt of a job with it in this
process (`--isolation thread`; `worker.isolation` runs it in a child process instead).

A processor is a sync or async callable taking a `worker.job.Job` and returning a JSON value.
Async processors run on the worker's event loop; sync ones run in a daemon thread each, so a
processor that never returns cannot block the worker's exit. A timeout (the job's `timeoutMs`)
cancels an async processor; a sync one cannot be killed from outside: the attempt ends at the
timeout all the same, and the caller learns from `stopped` when the thread really returns (the
worker keeps its slot taken until then, and drops whatever it returned).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.errors import PermanentError
from shared.queue.models import MAX_TRACEBACK_CHARS, JobError
from shared.store.json_text import compact_json
from worker.job import Job

Processor = Callable[[Job], Any]
T = TypeVar("T")
MAX_ERROR_MESSAGE_CHARS = 2_000


@dataclass(frozen=True)
class Succeeded:
    result_json: str


@dataclass(frozen=True)
class Failed:
    error: JobError
    permanent: bool


AttemptResult = Succeeded | Failed


class ProcessorLoadError(ValueError):
    """The processor cannot be loaded: a spec that is not `module:function`, a module that
    does not import, no such callable in it."""


def split_spec(spec: str) -> tuple[str, str]:
    """`module:attribute` -> (module, attribute); ProcessorLoadError if it does not look so."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ProcessorLoadError(f"processor {spec!r} must look like module:function")
    return module_name, attribute


def load_processor(spec: str) -> Processor:
    """`package.module:function` (or `module:object.method`) -> the callable; else
    ProcessorLoadError."""
    module_name, attribute = split_spec(spec)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        message = f"processor {spec!r}: cannot import {module_name}: {error}"
        raise ProcessorLoadError(message) from None
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ProcessorLoadError(f"processor {spec!r}: {module_name} has no {attribute}")
    if not callable(target):
        raise ProcessorLoadError(f"processor {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def is_async(processor: Processor) -> bool:
    call = getattr(processor, "__call__", None)  # noqa: B004 - async callable objects too
    return inspect.iscoroutinefunction(processor) or inspect.iscoroutinefunction(call)


async def run_attempt(
    processor: Processor,
    job: Job,
    max_result_bytes: int,
    *,
    stopped: asyncio.Future[str] | None = None,
    after: asyncio.Future[str] | None = None,
) -> AttemptResult:
    """Run the processor under the job's timeout and classify how it ended. Cancellation (the
    lease was lost, or shutdown) propagates: it is not an outcome.

    `stopped`, if given, resolves once the processor has really returned, with how it ended
    ("returned" or "raised <type>"): for a sync processor that may be long after a timeout or a
    cancel ended the attempt. `after`, if given, is awaited first, within the timeout: the
    `stopped` of an earlier attempt of the same job whose processor is still running."""
    deadline = asyncio.timeout(job.timeout_ms / 1000)
    called = False
    try:
        async with deadline:
            if after is not None and not after.done():
                await asyncio.shield(after)
            called = True
            result = await _call(processor, job, stopped)
    except TimeoutError as error:
        if deadline.expired():
            return timed_out(job, still_waiting=not called)
        return failure_of(error)
    except Exception as error:  # noqa: BLE001 - any processor failure is a failed attempt
        return failure_of(error)
    finally:
        if not called:
            note_end(stopped, "not called")
    return encode_result(result, max_result_bytes)


def failure_of(error: Exception) -> Failed:
    """What the processor raised, as a failed attempt: PermanentError fails the job at once."""
    if isinstance(error, PermanentError):
        return _failure(error, "permanent", permanent=True)
    return _failure(error, "error", permanent=False)


def timed_out(job: Job, *, still_waiting: bool) -> Failed:
    if still_waiting:
        message = f"an earlier attempt was still running after timeoutMs={job.timeout_ms}"
    else:
        message = f"the processor ran longer than timeoutMs={job.timeout_ms}"
    return Failed(JobError(message=message, kind="timeout"), permanent=False)


def _call(processor: Processor, job: Job, stopped: asyncio.Future[str] | None) -> Awaitable[Any]:
    if is_async(processor):
        return _noting_the_end(processor(job), stopped)
    return run_in_daemon_thread(processor, job, stopped)


async def _noting_the_end(call: Awaitable[T], stopped: asyncio.Future[str] | None) -> T:
    """An async processor ends with the await (a cancel is delivered into it)."""
    try:
        value = await call
    except BaseException as error:
        note_end(stopped, f"raised {type(error).__name__}")
        raise
    note_end(stopped, "returned")
    return value


def note_end(stopped: asyncio.Future[str] | None, how: str) -> None:
    if stopped is not None and not stopped.done():
        stopped.set_result(how)


def _failure(error: BaseException, kind: str, *, permanent: bool) -> Failed:
    message = f"{type(error).__name__}: {error}"[:MAX_ERROR_MESSAGE_CHARS]
    tail = traceback_tail(error)
    return Failed(JobError(message=message, kind=kind, traceback=tail), permanent=permanent)


def traceback_tail(error: BaseException) -> str | None:
    """The last MAX_TRACEBACK_CHARS of the error's traceback (the innermost frames matter)."""
    if error.__traceback__ is None:
        return None
    text = "".join(traceback.format_exception(error))
    return text[-MAX_TRACEBACK_CHARS:]


def encode_result(result: object, max_result_bytes: int) -> AttemptResult:
    """The result as stored JSON text, or a permanent failure: not JSON, or too large."""
    try:
        text = compact_json(result)
    except (TypeError, ValueError) as error:
        message = f"the processor returned a value that is not JSON: {error}"
        return Failed(JobError(message=message, kind="invalid_result"), permanent=True)
    size = len(text.encode())
    if size > max_result_bytes:
        message = f"the result is {size} bytes serialized; MAX_RESULT_BYTES is {max_result_bytes}"
        return Failed(JobError(message=message, kind="result_too_large"), permanent=True)
    return Succeeded(text)


async def run_in_daemon_thread(
    function: Callable[[Job], T], job: Job, stopped: asyncio.Future[str] | None = None
) -> T:
    """Like `asyncio.to_thread`, but in a daemon thread, which never delays the process exit.
    Cancelling the wait does not stop the thread: `stopped` resolves when it returns."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            value = context.run(function, job)
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting coroutine
            _resolve(loop, future, stopped, f"raised {type(error).__name__}", error=error)
        else:
            _resolve(loop, future, stopped, "returned", value=value)

    threading.Thread(target=target, name=f"job-{job.id}", daemon=True).start()
    return await future


def _resolve(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    stopped: asyncio.Future[str] | None,
    how: str,
    *,
    value: object = None,
    error: BaseException | None = None,
) -> None:
    def apply() -> None:
        if not future.done():  # cancelled: nobody waits for this value any more
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)
        note_end(stopped, how)

    # RuntimeError: the loop has closed; the worker is gone, and so is any interest in the value.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(apply)
