"""One built function in its own clean interpreter, driven over pipes (.ci/smoke_invoke.py).

The child gets only the environment given here (no PATH tricks, no PYTHON* variables, and
`-I -S -B` ignore them anyway) and checks nothing from the build machine is importable:
every sys.path entry must lie in the bundle or in the interpreter's standard library.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from smoke_bundles import EntryPoint

INVOKER = Path(__file__).resolve().parent / "smoke_invoke.py"
START_TIMEOUT_S = 60.0
EVENT_TIMEOUT_S = 30.0


class FunctionFailed(RuntimeError):
    """The function crashed, raised, hung, or could import something outside its bundle."""


class FunctionProcess:
    def __init__(self, python: str, point: EntryPoint, environment: dict[str, str]) -> None:
        self.point = point
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        roots = [str(root) for root in point.roots]
        command = [python, "-I", "-S", "-B", str(INVOKER), *roots, point.target]
        base = {"PATH": os.defpath, "LANG": "C.UTF-8", "TZ": "UTC", "HOME": str(point.directory)}
        self.process = subprocess.Popen(  # noqa: S603
            command,
            cwd=point.directory,
            env={**base, **environment},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        try:
            ready = self._read(START_TIMEOUT_S)
            self._check_isolation(python, ready["sys_path"])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.import_ms = float(ready["import_ms"])

    def invoke(self, event: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """The platform response and how long the handler took, in milliseconds."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"event": event}) + "\n").encode())
        self.process.stdin.flush()
        answer = self._read(EVENT_TIMEOUT_S)
        if "error" in answer:
            raise FunctionFailed(f"{self.point.name} raised:\n{answer['error']}")
        response: dict[str, Any] = answer["response"]
        return response, float(answer["ms"])

    def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if readable else b""
        if not line:
            self.process.kill()
            raise FunctionFailed(f"{self.point.name} gave no answer:\n{self._stderr_tail()}")
        message: dict[str, Any] = json.loads(line)
        return message

    def _check_isolation(self, python: str, sys_path: list[str]) -> None:
        stdlib = subprocess.run(  # noqa: S603
            [python, "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        bundle = [str(root) for root in self.point.roots]
        for entry in sys_path:
            in_bundle = any(entry.startswith(root) for root in bundle)
            in_stdlib = entry.startswith(stdlib) and "site-packages" not in entry
            if not (in_bundle or in_stdlib):
                raise FunctionFailed(f"{self.point.name} can import from {entry}")

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    def __enter__(self) -> FunctionProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()
