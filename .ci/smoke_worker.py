"""The worker recipe works: the Procfile's command (the Dockerfile runs the same one), started by
a shell as a container host would, runs a worker that completes a job enqueued through a built
function, and exits 0 on SIGTERM.

The worker sees only what the image holds: shared/, worker/ and requirements.txt. The
requirements come from the unpacked Lambda bundle (the same manylinux wheels for CPython 3.12
that `pip install` puts in python:3.12-slim), and `python` is a clean 3.12 without site-packages.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JOB = {"type": "smoke.worker", "data": {"steps": 1, "stepMs": 0}}
JOB_DEADLINE_S = 30.0
STOP_TIMEOUT_S = 30.0
POLL_PAUSE_S = 0.1

# (method, path, query, json body) -> (status, body)
Request = Callable[[str, str, list[tuple[str, str]], object], tuple[int, Any]]


class WorkerRecipeFailed(AssertionError):
    """The Procfile/Dockerfile command did not run a worker that completes jobs."""


def worker_command() -> str:
    """The Procfile's `worker:` command, after checking the Dockerfile runs the same one."""
    procfile = _line(ROOT / "Procfile", "worker:")
    dockerfile = _line(ROOT / "Dockerfile", "CMD exec ")
    if procfile != dockerfile:
        raise WorkerRecipeFailed(f"Procfile runs {procfile!r} but the Dockerfile {dockerfile!r}")
    return procfile


def check_worker_recipe(
    python: str, app_root: Path, environment: dict[str, str], request: Request
) -> float:
    """Seconds from enqueue to `completed` for one job run by the recipe's worker."""
    with _running_worker(python, app_root, environment):
        status, job = request("POST", "/api/enqueue", [], JOB)
        if status != 202:
            raise WorkerRecipeFailed(f"enqueue answered {status}: {job}")
        started = time.monotonic()
        while time.monotonic() - started < JOB_DEADLINE_S:
            status, shown = request("GET", "/api/status", [("id", job["id"])], None)
            if status == 200 and shown["status"] == "completed":
                return time.monotonic() - started
            time.sleep(POLL_PAUSE_S)
    raise WorkerRecipeFailed(f"job {job['id']} not completed in {JOB_DEADLINE_S} s: {shown}")


@contextmanager
def _running_worker(python: str, app_root: Path, environment: dict[str, str]) -> Iterator[None]:
    shutil.copytree(
        ROOT / "worker", app_root / "worker", ignore=shutil.ignore_patterns("__pycache__")
    )
    with (
        tempfile.TemporaryDirectory(prefix="worker-bin-") as bin_dir,
        tempfile.TemporaryFile() as log,
    ):
        wrapper = Path(bin_dir) / "python"
        wrapper.write_text(f'#!/bin/sh\nexec "{python}" -S -B "$@"\n')
        wrapper.chmod(0o755)
        process = subprocess.Popen(  # noqa: S603
            ["/bin/sh", "-c", f"exec {worker_command()}"],  # as a Procfile is run
            cwd=app_root,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(app_root), **environment},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            _stop(process, log)


def _stop(process: subprocess.Popen[bytes], log: Any) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if code != 0:
        log.seek(0)
        output = log.read().decode(errors="replace")[-4000:]
        raise WorkerRecipeFailed(f"the worker exited with {code} on SIGTERM:\n{output}")


def _line(path: Path, prefix: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise WorkerRecipeFailed(f"{path.name} has no line starting with {prefix!r}")
