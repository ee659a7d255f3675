"""Whether a process is still alive, for tests of child processes (a zombie, dead but not yet
reaped by whoever adopted it, counts as dead)."""

from __future__ import annotations

import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text(encoding="ascii").rpartition(")")[2].split()[0]
    except (FileNotFoundError, IndexError):  # gone meanwhile, or no /proc (then: alive)
        return stat.parent.parent.exists() and not stat.exists()
    return state not in {"Z", "X"}
