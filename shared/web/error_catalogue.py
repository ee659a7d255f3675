"""The page every problem's `type` points at (`/api/errors#<code>`): one row per error of the
hierarchy, generated from the classes themselves so that it cannot drift."""

from __future__ import annotations

import inspect

from shared.config.parameter_store import SecretsUnavailable
from shared.errors import AppError

PAGE_PATH = "/api/errors"


def problem_type(code: str) -> str:
    return f"{PAGE_PATH}#{code}"


def error_classes() -> list[type[AppError]]:
    """Every error a function can answer with, once per code, by status then code."""
    found: dict[str, type[AppError]] = {}
    pending: list[type[AppError]] = [AppError, SecretsUnavailable]
    while pending:
        error = pending.pop()
        found.setdefault(error.code, error)
        pending.extend(error.__subclasses__())
    return sorted(found.values(), key=lambda error: (error.status, error.code))


def catalogue_html() -> str:
    rows = "\n".join(_row(error) for error in error_classes())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Errors</title>
<style>body{{font:15px system-ui,sans-serif;margin:2rem;max-width:60rem}}
td,th{{padding:.3rem .6rem;text-align:left;vertical-align:top}}tr:target{{background:#ffa}}
code{{font-size:14px}}</style></head>
<body><h1>Errors</h1>
<p>Every error is <code>application/problem+json</code>: <code>type</code> (a link to its row
here), <code>title</code>, <code>status</code>, <code>detail</code> (what happened this time),
<code>code</code>, <code>requestId</code>, and for 422 <code>errors</code> with every field.</p>
<table><tr><th>code</th><th>status</th><th>title</th><th>meaning</th></tr>
{rows}
</table></body></html>
"""


def _row(error: type[AppError]) -> str:
    import html  # noqa: PLC0415 - cold start: every function imports problem_type, one page needs it

    doc = inspect.getdoc(error) if error.__doc__ else ""
    cells = (f"<code>{error.code}</code>", str(error.status), error.title, doc or "")
    body = "".join(
        f"<td>{cell if i == 0 else html.escape(cell)}</td>" for i, cell in enumerate(cells)
    )
    return f'<tr id="{error.code}">{body}</tr>'
