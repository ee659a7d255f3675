"""`--isolation process` (SPEC section 7): each slot runs its jobs in one long-lived child
process that imports the processor once; a child is killed (SIGTERM, then SIGKILL) and replaced
when its job is cancelled or times out, and one that dies fails that attempt like an exception.
Results, errors (PermanentError stays permanent) and progress come back as with threads; the
children die with the worker, even when it is SIGKILLed.

The cancel and timeout tests print how long the stubborn child took to be killed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shared import clock
from tests.support import child_processors
from tests.support.cancelling import CancelOverHttp, cancel_and_time
from tests.support.harness import QueueHarness
from tests.support.pids import process_alive
from tests.support.worker_process import REPO_ROOT, StartWorker, WorkerProcess, wait_for
from worker.isolation.runner import Isolation
from worker.options import WorkerOptions
from worker.processor import ProcessorLoadError
from worker.worker import Worker

PROCESS = ("--isolation", "process")
FAST_RETRIES = ("--retry-base-ms", "100", "--retry-max-ms", "200")


def pid_of(directory: Path, job_id: str, attempt: int = 1) -> int:
    return int((directory / f"{job_id}.{attempt}.pid").read_text())


def imports(log: Path) -> list[int]:
    """The pids that imported the processor module, in order."""
    return [int(line) for line in log.read_text().split()] if log.exists() else []


async def running_in(directory: Path, job_id: str, attempt: int = 1) -> int:
    """The pid of the child that runs this attempt, once it has started."""
    path = directory / f"{job_id}.{attempt}.pid"
    await wait_for(path.exists, what=f"{job_id} attempt {attempt} running")
    return pid_of(directory, job_id, attempt)


async def start_isolated(
    start_worker: StartWorker, tmp_path: Path, processor: str, *args: str
) -> tuple[WorkerProcess, Path]:
    import_log = tmp_path / "imports.log"
    env = {"IMPORT_LOG": str(import_log)}
    worker = await start_worker(f"child_processors:{processor}", *PROCESS, *args, env=env)
    return worker, import_log


async def test_a_cancelled_child_that_ignores_sigterm_is_killed_and_replaced(
    queue: QueueHarness,
    start_worker: StartWorker,
    cancel_over_http: CancelOverHttp,
    tmp_path: Path,
) -> None:
    worker, import_log = await start_isolated(start_worker, tmp_path, "run")
    data: dict[str, Any] = {"dir": str(tmp_path)}
    stuck = await queue.enqueue(
        now_ms=clock.now_ms(), data={**data, "mode": "stubborn"}, timeoutMs=30_000
    )
    first_child = await running_in(tmp_path, stuck)

    await cancel_and_time(queue, cancel_over_http, stuck, "process isolation, ignores SIGTERM")

    assert not process_alive(first_child)
    (killed,) = await worker.wait_for_event("child_killed", jobId=stuck)
    assert (killed["pid"], killed["exit"]) == (first_child, "was killed by SIGKILL")
    stored = queue.job(stuck)
    assert (stored["status"], stored["attempts"]) == ("cancelled", "1")
    later = [await queue.enqueue(now_ms=clock.now_ms(), data=data) for _ in range(2)]
    await wait_for(lambda: all(queue.job(j).get("status") == "completed" for j in later))
    (second_child,) = {json.loads(queue.job(j)["result"])["pid"] for j in later}
    assert second_child != first_child, "the next jobs ran in the replacement"
    assert imports(import_log) == [first_child, second_child], "one import per child"
    assert worker.process.pid not in imports(import_log), "the worker never imports it"


async def test_a_cancelled_child_that_keeps_the_default_sigterm_dies_at_once(
    queue: QueueHarness,
    start_worker: StartWorker,
    cancel_over_http: CancelOverHttp,
    tmp_path: Path,
) -> None:
    worker, _ = await start_isolated(start_worker, tmp_path, "run")
    data = {"dir": str(tmp_path), "sleepMs": 30_000}
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data=data, timeoutMs=60_000)
    child = await running_in(tmp_path, job_id)

    await cancel_and_time(queue, cancel_over_http, job_id, "process isolation, default SIGTERM")

    (killed,) = await worker.wait_for_event("child_killed", jobId=job_id)
    assert (killed["pid"], killed["exit"]) == (child, "was killed by SIGTERM")


async def test_a_child_past_its_timeout_is_killed_and_the_attempt_retried_in_a_new_one(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, import_log = await start_isolated(start_worker, tmp_path, "run", *FAST_RETRIES)
    data = {"dir": str(tmp_path), "mode": "stubborn"}
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data=data, timeoutMs=1_000, maxAttempts=2)
    first_child = await running_in(tmp_path, job_id)
    started = time.perf_counter()

    (retry,) = await worker.wait_for_event("retrying", jobId=job_id)
    killed_after_ms = (time.perf_counter() - started) * 1000
    print(f"\n[timeout] timeoutMs=1000, stubborn child killed {killed_after_ms:.0f} ms after start")
    second_child = await running_in(tmp_path, job_id, attempt=2)
    await wait_for(lambda: queue.job(job_id).get("status") == "failed")

    assert retry["errorKind"] == "timeout"
    assert not process_alive(first_child)
    assert second_child != first_child
    error = json.loads(queue.job(job_id)["error"])
    assert error["kind"] == "timeout"
    assert error["message"] == "the processor ran longer than timeoutMs=1000"
    await wait_for(lambda: len(imports(import_log)) == 3, what="a third child, for the next job")
    assert len(set(imports(import_log))) == 3


async def test_a_child_that_dies_fails_the_attempt_and_the_retry_runs_in_a_new_child(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, _ = await start_isolated(start_worker, tmp_path, "run", *FAST_RETRIES)
    data = {"dir": str(tmp_path), "mode": "crash_once"}
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data=data, maxAttempts=2)

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")

    (retry,) = worker.events("retrying")
    assert retry["errorKind"] == "crashed"
    assert retry["error"] == "the processor's process exited with code 3"
    result = json.loads(queue.job(job_id)["result"])
    assert result == {"pid": pid_of(tmp_path, job_id, 2), "attempt": 2}
    assert pid_of(tmp_path, job_id, 1) != result["pid"]


async def test_results_errors_and_progress_come_back_from_the_child(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, import_log = await start_isolated(start_worker, tmp_path, "run", "--concurrency", "2")
    now, directory = clock.now_ms(), str(tmp_path)
    done = await queue.enqueue(now_ms=now, data={"dir": directory})
    permanent = await queue.enqueue(
        now_ms=now, data={"dir": directory, "mode": "permanent"}, maxAttempts=3
    )
    error = await queue.enqueue(now_ms=now, data={"dir": directory, "mode": "error"}, maxAttempts=1)

    finished = (done, permanent, error)
    await wait_for(lambda: all(queue.job(j)["status"] in {"completed", "failed"} for j in finished))

    stored = queue.job(done)
    assert stored["status"] == "completed"
    assert json.loads(stored["result"]) == {"pid": pid_of(tmp_path, done), "attempt": 1}
    assert json.loads(stored["progress"]) == {"percent": 50.0, "message": "half way"}
    assert (queue.job(permanent)["status"], queue.job(permanent)["attempts"]) == ("failed", "1")
    permanent_error = json.loads(queue.job(permanent)["error"])
    value_error = json.loads(queue.job(error)["error"])
    assert "child_processors.py" in value_error.pop("traceback")  # the child's own frames
    permanent_error.pop("traceback")
    assert permanent_error == {
        "message": "PermanentError: this input can never work",
        "kind": "permanent",
    }
    assert value_error == {"message": "ValueError: a bad value", "kind": "error"}
    children = set(imports(import_log))
    assert len(children) == 2
    assert {pid_of(tmp_path, j) for j in finished} <= children
    assert worker.events("child_killed") == [], "an exception does not cost the child"


async def test_an_async_processor_runs_in_the_child_with_asyncio_run(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, import_log = await start_isolated(start_worker, tmp_path, "run_async")
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"dir": str(tmp_path), "sleepMs": 20})

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")

    result = json.loads(queue.job(job_id)["result"])
    assert result == {"pid": imports(import_log)[0], "loop": True}
    assert result["pid"] != worker.process.pid
    assert json.loads(queue.job(job_id)["progress"]) == {"percent": 30.0, "message": "awaiting"}


async def test_the_children_die_with_a_sigkilled_worker(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, import_log = await start_isolated(start_worker, tmp_path, "run", "--concurrency", "2")
    data = {"dir": str(tmp_path), "mode": "stubborn"}
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data=data, timeoutMs=30_000)
    busy = await running_in(tmp_path, job_id)
    children = imports(import_log)
    assert busy in children
    assert len(children) == 2

    worker.signal(signal.SIGKILL)
    await worker.wait_exit()

    await wait_for(lambda: not any(process_alive(pid) for pid in children), what="no orphans")


async def test_sigterm_lets_a_running_child_finish_hands_back_the_stuck_one_and_stops_all(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker, import_log = await start_isolated(
        start_worker, tmp_path, "run", "--concurrency", "2", "--grace-period-s", "3"
    )
    directory = str(tmp_path)
    finishes = await queue.enqueue(now_ms=clock.now_ms(), data={"dir": directory, "sleepMs": 1_000})
    stuck = await queue.enqueue(
        now_ms=clock.now_ms(), data={"dir": directory, "mode": "stubborn"}, timeoutMs=30_000
    )
    await running_in(tmp_path, finishes)
    stuck_child = await running_in(tmp_path, stuck)

    worker.signal(signal.SIGTERM)

    assert await worker.wait_exit() == 0
    assert queue.job(finishes)["status"] == "completed"
    handed_back = queue.job(stuck)
    assert (handed_back["status"], handed_back["attempts"]) == ("pending", "0")
    assert not process_alive(stuck_child)
    assert not any(process_alive(pid) for pid in imports(import_log))


def test_a_processor_the_children_cannot_load_stops_the_worker_with_exit_code_2() -> None:
    environment = {
        **os.environ,
        "UPSTASH_REDIS_REST_URL": "http://127.0.0.1:9",
        "UPSTASH_REDIS_REST_TOKEN": "x",
    }
    for spec, says in [
        ("tests.support.child_processors:missing", "has no missing"),
        ("no.such.module:f", "cannot import no.such.module"),
    ]:
        finished = subprocess.run(
            [sys.executable, "-m", "worker", "--processor", spec, *PROCESS],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert finished.returncode == 2, finished.stdout.decode() + finished.stderr.decode()
        lines = [json.loads(text) for text in finished.stdout.decode().splitlines()]
        (line,) = [entry for entry in lines if entry["event"] == "worker_not_started"]
        assert says in line["error"]
        assert repr(spec) in line["error"]


async def test_an_embedded_worker_runs_a_top_level_function_in_its_children(
    queue: QueueHarness, tmp_path: Path
) -> None:
    options = WorkerOptions(worker_id="embedded-children", isolation=Isolation.PROCESS)
    worker = Worker(child_processors.run, queue.settings, options)
    run = asyncio.create_task(worker.run())
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"dir": str(tmp_path)})

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")
    worker.stop()
    await asyncio.wait_for(run, timeout=20)

    child = json.loads(queue.job(job_id)["result"])["pid"]
    assert child not in (os.getpid(), None)
    assert not process_alive(child), "stopped with the worker"


def test_process_isolation_refuses_a_processor_a_child_could_not_import(
    queue: QueueHarness,
) -> None:
    options = WorkerOptions(isolation=Isolation.PROCESS)
    with pytest.raises(ProcessorLoadError, match="must be importable as module:function"):
        Worker(lambda job: None, queue.settings, options)
    with pytest.raises(ValueError, match="isolation must be one of thread, process"):
        WorkerOptions(isolation="fork")  # type: ignore[arg-type]
