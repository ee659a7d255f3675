"""The CLI as the tests run it: `cli.main.main` in this process, with an environment, stdin,
stdout and stderr of the test's own, and what came out."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cli.main import main


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class RunCli(Protocol):
    def __call__(
        self, *argv: str, env: Mapping[str, str] | None = None, answer: str = ""
    ) -> Ran: ...


def run_main(argv: list[str], env: Mapping[str, str], answer: str = "") -> Ran:
    """`answer` is what the operator types when asked (stdin)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(argv, environ=env, stdout=stdout, stderr=stderr, stdin=io.StringIO(answer))
    return Ran(code, stdout.getvalue(), stderr.getvalue())
