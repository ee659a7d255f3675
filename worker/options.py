"""`WorkerOptions`: how a `Worker` runs (`python -m worker` builds them from its flags)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

from shared.queue.backoff import Backoff
from shared.queue.routing import TypeFilter
from worker.isolation.runner import Isolation
from worker.schedule import IDLE_BEAT_S


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 1
    queue_name: str | None = None  # default: the settings' QUEUE_NAME
    grace_period_s: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    idle_beat_s: float = IDLE_BEAT_S
    subscribe: bool = True  # wake on the event stream (else only beats find new jobs)
    worker_id: str | None = None
    isolation: Isolation = Isolation.THREAD  # `process`: one child process per slot
    types: TypeFilter = field(default_factory=TypeFilter)  # the job types claimed (default all)

    def __post_init__(self) -> None:
        """ValueError for options no worker can run with."""
        if self.concurrency < 1 or self.grace_period_s < 0:
            raise ValueError("concurrency must be >= 1 and the grace period >= 0")
        if self.isolation not in tuple(Isolation):
            choices = ", ".join(Isolation)
            raise ValueError(f"isolation must be one of {choices}, not {self.isolation!r}")
        object.__setattr__(self, "isolation", Isolation(self.isolation))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
