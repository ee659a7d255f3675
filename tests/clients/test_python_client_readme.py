"""The Python client's README example, copied out of clients/python/README.md and run as a
user would run it (its TOKEN exported, as `make dev` prints it), against the dev server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.dev_server import DevServer

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"
RUN_TIMEOUT_S = 120


def first_python_example() -> str:
    readme = (CLIENT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^```python\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    assert found, "clients/python/README.md has no ```python example"
    return found.group(1)


def test_the_readme_example_queues_a_job_and_waits_for_its_result(
    dev_server: DevServer, user_token: Callable[[str], str], tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(first_python_example(), encoding="utf-8")
    environment = os.environ | {
        "PYTHONPATH": str(CLIENT),
        "QUEUE_URL": dev_server.base_url,
        "TOKEN": user_token("readme-reader"),
    }

    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "queued " in run.stdout
    assert "completed 100%" in run.stdout
    assert re.search(r"^result completed \{.*'prompt': 'a red fox'", run.stdout, re.MULTILINE)
