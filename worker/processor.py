"""Loading a processor (`module:function`) and running one attempt of a job with it.

A processor is a sync or async callable taking a `worker.job.Job` and returning a JSON value.
Async processors run on the worker's event loop; sync ones run in a daemon thread each, so a
processor that never returns cannot block the worker's exit. A timeout (the job's `timeoutMs`)
cancels an async processor; a sync one cannot be killed from outside: the worker stops waiting
for it, records the timeout, and drops whatever it returns later.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.errors import PermanentError
from shared.queue.models import JobError
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


def load_processor(spec: str) -> Processor:
    """`package.module:function` (or `module:object.method`) -> the callable; ValueError if not."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"processor {spec!r} must look like module:function")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"processor {spec!r}: cannot import {module_name}: {error}") from None
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"processor {spec!r}: {module_name} has no {attribute}")
    if not callable(target):
        raise ValueError(f"processor {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def is_async(processor: Processor) -> bool:
    call = getattr(processor, "__call__", None)  # noqa: B004 - async callable objects too
    return inspect.iscoroutinefunction(processor) or inspect.iscoroutinefunction(call)


async def run_attempt(processor: Processor, job: Job, max_result_bytes: int) -> AttemptResult:
    """Run the processor under the job's timeout and classify how it ended. Cancellation (the
    lease was lost, or shutdown) propagates: it is not an outcome."""
    deadline = asyncio.timeout(job.timeout_ms / 1000)
    try:
        async with deadline:
            result = await _call(processor, job)
    except TimeoutError as error:
        if deadline.expired():
            message = f"the processor ran longer than timeoutMs={job.timeout_ms}"
            return Failed(JobError(message=message, kind="timeout"), permanent=False)
        return _failure(error, "error", permanent=False)
    except PermanentError as error:
        return _failure(error, "permanent", permanent=True)
    except Exception as error:  # noqa: BLE001 - any processor failure is a failed attempt
        return _failure(error, "error", permanent=False)
    return encode_result(result, max_result_bytes)


def _call(processor: Processor, job: Job) -> Awaitable[Any]:
    if is_async(processor):
        return processor(job)  # type: ignore[no-any-return]
    return run_in_daemon_thread(processor, job)


def _failure(error: BaseException, kind: str, *, permanent: bool) -> Failed:
    message = f"{type(error).__name__}: {error}"[:MAX_ERROR_MESSAGE_CHARS]
    return Failed(JobError(message=message, kind=kind), permanent=permanent)


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


async def run_in_daemon_thread(function: Callable[[Job], T], job: Job) -> T:
    """Like `asyncio.to_thread`, but in a daemon thread, which never delays the process exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            value = context.run(function, job)
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting coroutine
            _resolve(loop, future.set_exception, future, error)
        else:
            _resolve(loop, future.set_result, future, value)

    threading.Thread(target=target, name=f"job-{job.id}", daemon=True).start()
    return await future


def _resolve(
    loop: asyncio.AbstractEventLoop,
    setter: Callable[[Any], None],
    future: asyncio.Future[Any],
    value: object,
) -> None:
    def apply() -> None:
        if not future.done():  # cancelled: nobody waits for this value any more
            setter(value)

    # RuntimeError: the loop has closed; the worker is gone, and so is any interest in the value.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(apply)
