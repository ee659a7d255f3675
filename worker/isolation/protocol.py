"""What a slot's child process and the worker say to each other over their two pipes.

worker -> child   RunJob, one at a time (the child answers each before the next)
child -> worker   Ready once the processor is imported (or LoadFailed, then it exits);
                  then, per job, any number of `Progress` and one `AttemptResult`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.job import Job


@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class LoadFailed:
    message: str


@dataclass(frozen=True)
class RunJob:
    """A job as the child rebuilds it (a `Job` itself carries the worker's callbacks)."""

    id: str
    type: str
    user_id: str
    data: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout_ms: int
    max_result_bytes: int

    @classmethod
    def of(cls, job: Job, max_result_bytes: int) -> RunJob:
        return cls(
            id=job.id,
            type=job.type,
            user_id=job.user_id,
            data=job.data,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            timeout_ms=job.timeout_ms,
            max_result_bytes=max_result_bytes,
        )
