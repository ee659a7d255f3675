"""Helpers for the queue tests (plain functions and classes, used by fixtures in several places)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from shared.store.scripts import load_script

QUEUE_SCRIPTS = ("queue/enqueue_job", "queue/cancel_job", "queue/queue_stats")


def preload_queue_scripts(client: redis.Redis) -> None:
    """Load the queue scripts into Redis, so every call is one EVALSHA: on a fresh Redis the
    first call of each script costs one extra request (NOSCRIPT, then EVAL) once. Scripts
    survive FLUSHDB."""
    for name in QUEUE_SCRIPTS:
        script = load_script(name)
        assert client.script_load(script.source) == script.sha1


@dataclass
class FrozenClock:
    """Stands in for `shared.clock.now_ms`: time moves only when a test moves it."""

    now: int

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


def real_now_ms() -> int:
    return time.time_ns() // 1_000_000
