"""What runs inside a slot's child process (`--isolation process`): import the processor once,
then run the jobs the worker sends, one at a time, in the child's main thread (so a processor
may install signal handlers), streaming progress back.

The child leaves the worker's process group, so a Ctrl-C or a signal to the worker's group
reaches the worker alone (which shuts down gracefully) and the worker can signal the child's
whole group (the processor's own subprocesses too). It dies with the worker: a thread watches
the job pipe, whose other end only the worker holds, and the worker's pid; when the pipe
closes (the worker exited, even by SIGKILL, or stopped the child) or the worker is gone, the
child exits at once, in the middle of a job if need be.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sys
import threading
from multiprocessing.connection import Connection

from worker.isolation.protocol import LoadFailed, Ready, RunJob
from worker.job import Job
from worker.processor import (
    AttemptResult,
    Processor,
    encode_result,
    failure_of,
    is_async,
    load_processor,
)
from worker.progress import make_progress

PARENT_CHECK_S = 1.0


def child_main(spec: str, jobs: Connection, replies: Connection, parent_pid: int) -> None:
    """The child's whole life (the target of its `multiprocessing.Process`)."""
    os.setpgrp()
    send = _Sender(replies)
    try:
        processor = load_processor(spec)
    except Exception as error:  # noqa: BLE001 - whatever the import raised, the worker reports it
        send(LoadFailed(f"{type(error).__name__}: {error}"))
        return
    inbox: queue.SimpleQueue[RunJob] = queue.SimpleQueue()
    watcher = threading.Thread(
        target=receive_jobs, args=(jobs, inbox, parent_pid), name="jobs", daemon=True
    )
    watcher.start()
    send(Ready(os.getpid()))
    while True:
        send(run_job(processor, inbox.get(), send))


def receive_jobs(jobs: Connection, inbox: queue.SimpleQueue[RunJob], parent_pid: int) -> None:
    """Hand each job to the main thread; exit the process once the worker is gone."""
    with contextlib.suppress(EOFError, OSError):
        while os.getppid() == parent_pid:
            if jobs.poll(PARENT_CHECK_S):
                inbox.put(jobs.recv())
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def run_job(processor: Processor, request: RunJob, send: _Sender) -> AttemptResult:
    """One attempt, classified as `worker.processor.run_attempt` does (the worker enforces
    the timeout: it kills the child)."""

    def report(percent: float, message: str | None) -> None:
        send(make_progress(percent, message))

    job = Job(
        id=request.id,
        type=request.type,
        user_id=request.user_id,
        data=request.data,
        attempt=request.attempt,
        max_attempts=request.max_attempts,
        timeout_ms=request.timeout_ms,
        _report=report,
    )
    try:
        result = asyncio.run(processor(job)) if is_async(processor) else processor(job)
    except Exception as error:  # noqa: BLE001 - any processor failure is a failed attempt
        return failure_of(error)
    return encode_result(result, request.max_result_bytes)


class _Sender:
    """Messages to the worker, whole, from any thread (progress may come from several)."""

    def __init__(self, replies: Connection) -> None:
        self._replies = replies
        self._lock = threading.Lock()

    def __call__(self, message: object) -> None:
        with self._lock:
            self._replies.send(message)
