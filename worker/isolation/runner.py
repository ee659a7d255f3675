"""Where a slot's processor runs (`--isolation`): `thread` (the default) runs it in the worker's
process, async ones on its loop and sync ones in a daemon thread each; `process` runs it in
the slot's long-lived child process (`worker.isolation.processes`).

Either way a runner takes a `Job` and returns how the attempt ended; cancelling the call
stops the processor as far as the isolation allows (an async processor is cancelled, a child
is killed, a thread can only be told: `job.cancelled`).
"""

from __future__ import annotations

import asyncio
import importlib.util
from enum import StrEnum
from typing import Protocol

from worker.isolation.processes import ProcessRunner
from worker.job import Job
from worker.processor import (
    AttemptResult,
    Processor,
    ProcessorLoadError,
    load_processor,
    run_attempt,
    split_spec,
)


class Isolation(StrEnum):
    THREAD = "thread"
    PROCESS = "process"


class Runner(Protocol):
    async def start(self) -> None: ...

    async def run(
        self,
        job: Job,
        max_result_bytes: int,
        *,
        stopped: asyncio.Future[str] | None = None,
        after: asyncio.Future[str] | None = None,
    ) -> AttemptResult:
        """See `worker.processor.run_attempt` for `stopped` and `after`."""

    async def close(self) -> None: ...


class InProcessRunner:
    """`--isolation thread`."""

    def __init__(self, processor: Processor) -> None:
        self._processor = processor

    async def start(self) -> None:
        return None

    async def run(
        self,
        job: Job,
        max_result_bytes: int,
        *,
        stopped: asyncio.Future[str] | None = None,
        after: asyncio.Future[str] | None = None,
    ) -> AttemptResult:
        return await run_attempt(
            self._processor, job, max_result_bytes, stopped=stopped, after=after
        )

    async def close(self) -> None:
        return None


def make_runner(
    processor: Processor | str, isolation: Isolation, slots: int, worker_id: str
) -> Runner:
    """ProcessorLoadError for a processor this isolation cannot run. With `process`, the
    worker itself never imports a processor given as `module:function` (only its children
    do): a model loaded at import is loaded once per slot, not once more in the worker."""
    if isolation is Isolation.PROCESS:
        return ProcessRunner(importable_spec(processor), slots, worker_id)
    if isinstance(processor, str):
        return InProcessRunner(load_processor(processor))
    return InProcessRunner(processor)


def importable_spec(processor: Processor | str) -> str:
    """The `module:function` a child process imports: as given (its module must exist), or
    the name of a callable defined at the top level of a module."""
    if isinstance(processor, str):
        module_name, _ = split_spec(processor)
        try:
            found = importlib.util.find_spec(module_name)
        except (ImportError, ValueError) as error:
            message = f"processor {processor!r}: cannot import {module_name}: {error}"
            raise ProcessorLoadError(message) from None
        if found is None:
            message = f"processor {processor!r}: cannot import {module_name}: no such module"
            raise ProcessorLoadError(message)
        return processor
    spec = f"{getattr(processor, '__module__', '')}:{getattr(processor, '__qualname__', '')}"
    try:
        importable = load_processor(spec) is processor
    except ProcessorLoadError:
        importable = False
    if not importable:
        message = (
            f"{processor!r}: with isolation=process the processor must be importable as "
            "module:function (defined at the top level of a module), or given as that string"
        )
        raise ProcessorLoadError(message)
    return spec
