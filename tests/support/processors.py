"""Processors the worker tests run in real worker processes (`tests.support.processors:<name>`).

Each reads what it should do from the job's `data`. Files (not Redis) carry what the tests
observe, so the records never add to the commands being counted.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from shared.errors import PermanentError
from worker.job import Job

GATE_WAIT_S = 30.0


async def record(job: Job) -> dict[str, Any]:
    """Work for `sleepMs`, then append `<job id> <execution id>` to `$RECORD_DIR/<pid>.log`
    (an execution that finished) and return the execution id in the result."""
    await asyncio.sleep(job.data.get("sleepMs", 0) / 1000)
    execution = uuid.uuid4().hex
    record_file = Path(os.environ["RECORD_DIR"]) / f"{os.getpid()}.log"
    with record_file.open("a", encoding="utf-8") as file:
        file.write(f"{job.id} {execution}\n")
    return {"pid": os.getpid(), "execution": execution}


async def record_attempt(job: Job) -> dict[str, Any]:
    """Work for `sleepMs`, then append `<job id> <attempt> <call id>` to `$RECORD_DIR/<pid>.log`
    (a call that returned) and return the attempt and call id in the result."""
    await asyncio.sleep(job.data.get("sleepMs", 0) / 1000)
    call = uuid.uuid4().hex
    record_file = Path(os.environ["RECORD_DIR"]) / f"{os.getpid()}.log"
    with record_file.open("a", encoding="utf-8") as file:
        file.write(f"{job.id} {job.attempt} {call}\n")
    return {"pid": os.getpid(), "attempt": job.attempt, "call": call}


def gated(job: Job) -> dict[str, Any]:
    """Sync: report progress, then wait (in the worker's thread) until `data.gate` exists."""
    job.progress(40, "waiting for the gate")
    _wait_for_gate(Path(job.data["gate"]))
    job.progress(100, "through the gate")
    return {"gate": "open", "attempt": job.attempt}


def timed(job: Job) -> dict[str, int]:
    """Sync: stamp `<data.dir>/<job id>.<attempt>.start` and `.end` (epoch ns) around the work,
    which on the attempts in `data.slow` (default [1]) is to sleep `data.sleepMs`, then wait
    until `data.gate` exists (when given)."""
    directory = Path(job.data["dir"])
    _stamp(directory / f"{job.id}.{job.attempt}.start")
    try:
        if job.attempt in job.data.get("slow", [1]):
            time.sleep(job.data.get("sleepMs", 0) / 1000)
            if "gate" in job.data:
                _wait_for_gate(Path(job.data["gate"]))
    finally:
        _stamp(directory / f"{job.id}.{job.attempt}.end")
    return {"attempt": job.attempt}


def _stamp(path: Path) -> None:
    """Write the time atomically (a reader never sees a half-written file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(str(time.time_ns()), encoding="utf-8")
    partial.rename(path)


def _wait_for_gate(gate: Path) -> None:
    deadline = time.monotonic() + GATE_WAIT_S
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.01)


def hang(job: Job) -> None:
    """Sync and stubborn: sleeps far longer than any test waits (no thread can be killed)."""
    time.sleep(job.data.get("sleepS", 120))


async def hang_async(job: Job) -> None:
    await asyncio.sleep(job.data.get("sleepS", 120))


def flaky(job: Job) -> dict[str, int]:
    """Fails every attempt before `data.succeedOn` (default: never succeeds)."""
    if job.attempt < job.data.get("succeedOn", 1_000):
        raise RuntimeError(f"attempt {job.attempt} fails")
    return {"attempt": job.attempt}


def permanent(job: Job) -> None:
    raise PermanentError("this input can never work")


def oversized(job: Job) -> str:
    return "x" * job.data["bytes"]


def until_cancelled(job: Job) -> dict[str, str]:
    """Sync and cooperative: stamp `<data.dir>/<job id>.start`, then check `job.cancelled`
    every 10 ms; returns (a result the worker must refuse) once it is set."""
    _stamp(Path(job.data["dir"]) / f"{job.id}.start")
    deadline = time.monotonic() + GATE_WAIT_S
    while not job.cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("the test never cancelled the job")
        time.sleep(0.01)
    return {"ended": "cancelled"}


def progress_forever(job: Job) -> None:
    """Sync: stamp `<data.dir>/<job id>.start`, then report progress every 10 ms until
    `job.progress()` raises JobCancelled (recorded in `<data.dir>/<job id>.end`)."""
    directory = Path(job.data["dir"])
    _stamp(directory / f"{job.id}.start")
    deadline = time.monotonic() + GATE_WAIT_S
    step = 0
    try:
        while time.monotonic() < deadline:
            step += 1
            job.progress(min(step, 99), f"step {step}")
            time.sleep(0.01)
    except BaseException as error:
        (directory / f"{job.id}.end").write_text(type(error).__name__, encoding="utf-8")
        raise
    raise TimeoutError("the test never cancelled the job")


async def async_until_cancelled(job: Job) -> None:
    """Async: stamp `<data.dir>/<job id>.start`, then await forever; record the cancel
    delivered into it in `<data.dir>/<job id>.end`."""
    directory = Path(job.data["dir"])
    _stamp(directory / f"{job.id}.start")
    try:
        await asyncio.sleep(GATE_WAIT_S)
    except asyncio.CancelledError:
        (directory / f"{job.id}.end").write_text("CancelledError", encoding="utf-8")
        raise


def ignores_cancel(job: Job) -> dict[str, str]:
    """Sync and deaf to `job.cancelled`: stamp `<data.dir>/<job id>.start`, wait until
    `data.gate` exists, then return a result."""
    _stamp(Path(job.data["dir"]) / f"{job.id}.start")
    _wait_for_gate(Path(job.data["gate"]))
    return {"ended": "late"}
