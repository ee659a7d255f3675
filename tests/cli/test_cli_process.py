"""`python -m cli` as a process, as an operator types it: help, a usage error's exit code 2, and
a command against the stack with the worker's environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from local.stack import Gateway
from tests.support.worker_process import REPO_ROOT


def cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command() -> None:
    ran = cli("--help", env={"PATH": os.environ.get("PATH", "")})

    assert ran.returncode == 0
    for command in (
        "stats", "jobs", "show", "retry", "cancel", "purge", "limits", "reset-limit",
        "export", "import", "doctor", "usage",
    ):  # fmt: skip
        assert command in ran.stdout


def test_a_usage_error_exits_2() -> None:
    ran = cli("jobs", "--status", "nope", env={"PATH": os.environ.get("PATH", "")})

    assert ran.returncode == 2
    assert "invalid choice" in ran.stderr


def test_stats_reads_the_worker_s_environment(gateway: Gateway) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "KV_REST_API_URL": gateway.url,  # the Vercel KV names work too
        "KV_REST_API_TOKEN": gateway.token,
        "QUEUE_NAME": "ai-queue",
    }

    ran = cli("stats", "--json", env=env)

    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["pending"] == 0
