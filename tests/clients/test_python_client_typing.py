"""The Python client is typed (it ships py.typed): mypy --strict, as the repository's own code
(mypy.ini), passes on it; and its package metadata names the version its User-Agent sends."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from ai_queue_client.config import VERSION

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clients" / "python"


def test_mypy_strict_passes_on_the_client() -> None:
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            str(PACKAGE / "ai_queue_client"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_package_is_typed_and_its_version_is_the_user_agents() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert (PACKAGE / "ai_queue_client" / "py.typed").is_file()
    assert project["version"] == VERSION
    assert project["dependencies"] == ["httpx>=0.27,<1"]
