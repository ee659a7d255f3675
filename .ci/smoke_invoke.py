"""Invoke one built function the way its platform does, inside a clean interpreter.

Run as `python3.12 -I -S -B smoke_invoke.py ROOT [ROOT ...] MODULE:HANDLER` from the bundle's
directory: no site-packages, no user site, no PYTHON* variables, nothing written, so only the
standard library and the bundle's ROOTs (what the platform puts on sys.path) can be imported.
Standard library only. Imports MODULE (the cold start), then answers one JSON line per JSON
line on stdin: `{"event": {...}}` -> `{"response": {...}, "ms": 1.2}` or `{"error": "..."}`.
The first line it writes reports the import: `{"ready": true, "import_ms": ..., "sys_path": [...]}`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Context:
    """The parts of a Lambda context object that adapters read."""

    function_name = "smoke-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main() -> None:
    *roots, target = sys.argv[1:]
    protocol = _take_stdout()
    sys.path[:0] = [str(Path(root).resolve()) for root in roots]
    module_name, _, attribute = target.partition(":")
    started = time.perf_counter()
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    import_ms = (time.perf_counter() - started) * 1000
    _write(protocol, {"ready": True, "import_ms": import_ms, "sys_path": sys.path})
    for line in sys.stdin:
        _write(protocol, _invoke(handler, json.loads(line)["event"]))


def _take_stdout() -> IO[str]:
    """Keep the real stdout for answers; whatever the function prints goes to stderr."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _invoke(handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        response = handler(event, Context())
    except Exception:  # noqa: BLE001 - reported to the driver, which fails the smoke test
        return {"error": traceback.format_exc()}
    return {"response": response, "ms": (time.perf_counter() - started) * 1000}


def _write(protocol: IO[str], message: dict[str, Any]) -> None:
    protocol.write(json.dumps(message) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
