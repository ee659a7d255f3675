"""A real worker process (`python -m worker`) as the tests see it: its JSON log lines, its
signals and its exit; and `wait_for`, the one way the tests wait for something to happen."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 20.0


async def wait_for(condition: Callable[[], Any], timeout_s: float = WAIT_S, what: str = "") -> Any:
    """Poll until `condition()` is truthy (returning it) or fail after `timeout_s`. The
    condition may be async (it returns an awaitable, awaited each time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (value := await _value(condition())):
        if loop.time() > deadline:
            pytest.fail(f"not reached within {timeout_s} s: {what or condition}")
        await asyncio.sleep(0.02)
    return value


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if line["event"] == event]

    async def wait_for_event(
        self, event: str, count: int = 1, **match: Any
    ) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]]:
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.output()}")
            hits = [e for e in self.events(event) if all(e.get(k) == v for k, v in match.items())]
            return hits if len(hits) >= count else []

        hits: list[dict[str, Any]] = await wait_for(found, what=f"{count} x {event} {match}")
        return hits

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    async def wait_exit(self, timeout_s: float = WAIT_S) -> int:
        await wait_for(lambda: self.process.poll() is not None, timeout_s, "worker exit")
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


StartWorker = Callable[..., Awaitable[WorkerProcess]]
