"""Running one attempt: how a processor's return, exception or slowness becomes an outcome,
for sync processors (in a daemon thread) and async ones (on the loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from shared.errors import PermanentError
from shared.queue.models import MAX_TRACEBACK_CHARS, JobError
from worker.job import Job
from worker.processor import (
    Failed,
    Succeeded,
    encode_result,
    is_async,
    load_processor,
    run_attempt,
    traceback_tail,
)

MAX_RESULT_BYTES = 100


def make_job(timeout_ms: int = 5_000, **data: Any) -> Job:
    return Job(
        id="01JOB",
        type="t",
        user_id="u",
        data=data,
        attempt=1,
        max_attempts=3,
        timeout_ms=timeout_ms,
        _report=lambda percent, message: None,
    )


def sync_ok(job: Job) -> dict[str, Any]:
    return {"thread": threading.current_thread().name, "daemon": threading.current_thread().daemon}


async def async_ok(job: Job) -> dict[str, Any]:
    return {"thread": threading.current_thread().name}


def sync_raises(job: Job) -> None:
    raise KeyError("missing")


async def async_permanent(job: Job) -> None:
    raise PermanentError("bad input")


def sync_slow(job: Job) -> None:
    time.sleep(2)


async def async_slow(job: Job) -> None:
    await asyncio.sleep(30)


async def own_timeout(job: Job) -> None:
    raise TimeoutError("the GPU API timed out")


class AsyncCallable:
    async def __call__(self, job: Job) -> str:
        return "called"


async def test_a_sync_processor_runs_in_a_daemon_thread_and_an_async_one_on_the_loop() -> None:
    sync_outcome = await run_attempt(sync_ok, make_job(), MAX_RESULT_BYTES)
    async_outcome = await run_attempt(async_ok, make_job(), MAX_RESULT_BYTES)

    assert sync_outcome == Succeeded('{"thread":"job-01JOB","daemon":true}')
    assert async_outcome == Succeeded(f'{{"thread":"{threading.current_thread().name}"}}')


def test_async_callable_objects_count_as_async() -> None:
    assert is_async(AsyncCallable())
    assert is_async(async_ok)
    assert not is_async(sync_ok)


@pytest.mark.parametrize(
    ("processor", "expected"),
    [
        (sync_raises, Failed(JobError(message="KeyError: 'missing'", kind="error"), False)),
        (
            async_permanent,
            Failed(JobError(message="PermanentError: bad input", kind="permanent"), True),
        ),
        (
            own_timeout,
            Failed(JobError(message="TimeoutError: the GPU API timed out", kind="error"), False),
        ),
    ],
)
async def test_exceptions_are_failed_attempts_and_permanent_error_is_final(
    processor: Any, expected: Failed
) -> None:
    outcome = await run_attempt(processor, make_job(), MAX_RESULT_BYTES)

    assert isinstance(outcome, Failed)
    assert outcome.error.traceback is not None
    assert outcome.error.traceback.startswith("Traceback (most recent call last):")
    assert processor.__name__ in outcome.error.traceback  # the processor's own frame
    assert outcome.error.traceback.endswith(expected.error.message + "\n")
    without_traceback = outcome.error.model_copy(update={"traceback": None})
    assert Failed(without_traceback, outcome.permanent) == expected


def test_a_long_traceback_keeps_its_last_characters() -> None:
    try:
        raise ValueError("the innermost " + "x" * 5000)
    except ValueError as error:
        tail = traceback_tail(error)
    assert tail is not None
    assert len(tail) == MAX_TRACEBACK_CHARS
    assert tail.endswith("x" * 100 + "\n")


@pytest.mark.parametrize("processor", [sync_slow, async_slow])
async def test_running_past_the_timeout_is_a_failed_attempt(processor: Any) -> None:
    outcome = await run_attempt(processor, make_job(timeout_ms=50), MAX_RESULT_BYTES)

    assert outcome == Failed(
        JobError(message="the processor ran longer than timeoutMs=50", kind="timeout"), False
    )


async def test_cancellation_is_not_an_outcome() -> None:
    attempt = asyncio.create_task(run_attempt(async_slow, make_job(), MAX_RESULT_BYTES))
    await asyncio.sleep(0)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"url": "x"}, Succeeded('{"url":"x"}')),
        (None, Succeeded("null")),
        ("é", Succeeded('"é"')),
        ("x" * 98, Succeeded('"' + "x" * 98 + '"')),  # exactly 100 bytes
        ("x" * 99, "result_too_large"),
        ("é" * 50, "result_too_large"),  # counted in UTF-8 bytes
        ({1, 2}, "invalid_result"),
        (float("nan"), "invalid_result"),
    ],
)
def test_results_must_be_json_within_max_result_bytes(result: object, expected: object) -> None:
    outcome = encode_result(result, MAX_RESULT_BYTES)
    if isinstance(expected, str):
        assert isinstance(outcome, Failed)
        assert (outcome.error.kind, outcome.permanent) == (expected, True)
    else:
        assert outcome == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("worker.demo", "must look like module:function"),
        (":process", "must look like module:function"),
        ("worker.demo:nope", "has no nope"),
        ("worker.nope:process", "cannot import worker.nope"),
        ("worker.schedule:IDLE_BEAT_S", "is not callable"),
    ],
)
def test_a_processor_spec_that_does_not_name_a_callable_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_processor(spec)


def test_a_processor_spec_names_a_function_in_a_module() -> None:
    from worker import demo

    assert load_processor("worker.demo:process") is demo.process


def sync_brief_overrun(job: Job) -> str:
    time.sleep(0.3)
    return "late"


async def test_stopped_resolves_only_when_a_timed_out_sync_processor_really_returns() -> None:
    stopped: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    outcome = await run_attempt(
        sync_brief_overrun, make_job(timeout_ms=50), MAX_RESULT_BYTES, stopped=stopped
    )

    assert isinstance(outcome, Failed)
    assert outcome.error.kind == "timeout"
    assert not stopped.done(), "the thread is still sleeping"
    assert await stopped == "returned"


@pytest.mark.parametrize(
    ("processor", "ended"), [(sync_raises, "raised KeyError"), (async_ok, "returned")]
)
async def test_stopped_says_how_the_processor_ended(processor: Any, ended: str) -> None:
    stopped: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    await run_attempt(processor, make_job(), MAX_RESULT_BYTES, stopped=stopped)
    assert stopped.result() == ended


async def test_an_attempt_waits_for_an_earlier_one_within_its_own_timeout() -> None:
    loop = asyncio.get_running_loop()
    earlier: asyncio.Future[str] = loop.create_future()
    stopped: asyncio.Future[str] = loop.create_future()

    outcome = await run_attempt(
        sync_ok, make_job(timeout_ms=50), MAX_RESULT_BYTES, stopped=stopped, after=earlier
    )

    assert outcome == Failed(
        JobError(message="an earlier attempt was still running after timeoutMs=50", kind="timeout"),
        False,
    )
    assert stopped.result() == "not called"
    assert not earlier.cancelled()


async def test_an_attempt_runs_once_the_earlier_one_has_returned() -> None:
    earlier: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.05, earlier.set_result, "returned")

    outcome = await run_attempt(async_ok, make_job(), MAX_RESULT_BYTES, after=earlier)

    assert isinstance(outcome, Succeeded)
