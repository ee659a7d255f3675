"""The CLI's own failures, beside the product's (`shared.errors`), and the exit codes:
0 ok, 1 failed (Redis refused or unreachable, no such job, a check failed, the operator said no),
2 usage (a bad command line or configuration: nothing was sent)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the CLI explains in one line; `exit_code` is what the process returns."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    """A bad argument or configuration, found before anything reached Redis."""

    exit_code = EXIT_USAGE


class Aborted(CliError):
    """The operator did not confirm a destructive command: nothing changed."""


class Failed(CliError):
    """The command ran but did not do all it was asked (a job that could not be retried...)."""
