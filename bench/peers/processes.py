"""Starting and stopping a design's worker processes and its producer, each a subprocess with
stdout discarded and stderr kept in a file (shown when something goes wrong)."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOGS = Path(tempfile.mkdtemp(prefix="bench-peers-"))
STOP_TIMEOUT_S = 15.0


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Processes:
    """Worker processes of one design (several for RQ's concurrency)."""

    def __init__(self, commands: list[list[str]], env: dict[str, str]) -> None:
        self.errors = [LOGS / f"worker-{time.monotonic_ns()}-{n}.err" for n in range(len(commands))]
        self.running = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=error.open("w"),
                start_new_session=True,
            )
            for command, error in zip(commands, self.errors, strict=True)
        ]

    def check_alive(self) -> None:
        for process, error in zip(self.running, self.errors, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"worker exited {process.returncode}:\n{tail(error)}")

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Producer:
    """A producer subprocess: `enqueue(n)` has it enqueue n jobs one after another."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.error = LOGS / f"producer-{time.monotonic_ns()}.err"
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.error.open("w"),
            text=True,
        )

    def enqueue(self, count: int = 1) -> None:
        assert self.process.stdin
        assert self.process.stdout
        self.process.stdin.write("one\n" if count == 1 else f"many {count}\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ok":
            raise RuntimeError(f"producer failed:\n{tail(self.error)}")

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=STOP_TIMEOUT_S)


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(poll_s)
    return value
