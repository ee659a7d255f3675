"""What the CLI prints: rich tables for people, one JSON document for scripts (`--json`),
questions before destructive commands, progress bars on long work. Results go to stdout;
questions, progress and errors to stderr, so `--json` output stays parseable."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from cli.errors import Aborted

PIPE_WIDTH = 160  # when stdout is not a terminal, do not wrap tables at 80 columns
YES = {"y", "yes"}


@dataclass
class Output:
    json_mode: bool
    out: Console
    err: Console
    stdin: IO[str]

    @classmethod
    def create(
        cls,
        *,
        json_mode: bool,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        stdin: IO[str] | None = None,
    ) -> Output:
        stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
        out = Console(file=stdout, highlight=False)
        if not out.is_terminal:
            out = Console(file=stdout, highlight=False, width=PIPE_WIDTH)
        err = Console(file=stderr, highlight=False)
        if not err.is_terminal:
            err = Console(file=stderr, highlight=False, width=PIPE_WIDTH)
        return cls(json_mode=json_mode, out=out, err=err, stdin=stdin or sys.stdin)

    def emit(self, payload: object, human: Callable[[Console], None]) -> None:
        """The command's result: `payload` as JSON with `--json`, else `human` renders it."""
        if self.json_mode:
            self.out.file.write(json.dumps(payload, ensure_ascii=False) + "\n")
            self.out.file.flush()
        else:
            human(self.out)

    def note(self, message: str) -> None:
        """A line for the person at the terminal (stderr), never part of the result."""
        self.err.print(message, markup=False, soft_wrap=True)

    def error(self, message: str, code: str) -> None:
        if self.json_mode:
            payload = {"error": {"code": code, "message": message}}
            self.err.file.write(json.dumps(payload, ensure_ascii=False) + "\n")
        else:
            self.err.print(f"error: {message}", markup=False, style="red", soft_wrap=True)

    def confirm(self, question: str, *, assume_yes: bool) -> None:
        """Go on only if the operator says yes (or passed --yes); Aborted otherwise."""
        if assume_yes:
            return
        self.err.print(f"{question} [y/N] ", end="", markup=False, soft_wrap=True)
        answer = self.stdin.readline()
        if not answer:
            raise Aborted("no answer (stdin is closed): nothing changed; pass --yes to skip asking")
        if answer.strip().lower() not in YES:
            raise Aborted("not confirmed: nothing changed")

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Tracker]:
        """A progress bar on stderr while it is a terminal (silent otherwise)."""
        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=self.err, disable=not self.err.is_terminal) as bar:
            yield Tracker(bar, bar.add_task(description, total=total))


@dataclass
class Tracker:
    bar: Progress
    task: TaskID

    def advance(self, amount: int) -> None:
        self.bar.advance(self.task, amount)


class PlainTable(Table):
    """A table whose text cells are shown as they are: a job type, user id or error message
    that looks like rich markup (`[red]...`) is never interpreted."""

    def add_row(
        self,
        *renderables: RenderableType | None,
        style: StyleType | None = None,
        end_section: bool = False,
    ) -> None:
        cells = [Text(cell) if isinstance(cell, str) else cell for cell in renderables]
        super().add_row(*cells, style=style, end_section=end_section)


def table(title: str | None, *columns: str) -> Table:
    grid = PlainTable(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def when(epoch_ms: int | None) -> str:
    """An epoch-ms time as UTC text, to the second; '' for none."""
    if epoch_ms is None:
        return ""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def ago(duration_ms: int | None) -> str:
    """A duration in the largest whole unit: '3 s', '12 min', '5 h', '2 d'."""
    if duration_ms is None:
        return ""
    seconds = duration_ms // 1000
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def text(value: Any) -> str:
    return "" if value is None else str(value)
