"""Reading the API's JSON replies field by field, each checked for its type, so a reply of the
wrong shape is one clear error (`ReplyShapeError`) instead of a `KeyError` deep in a caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


class ReplyShapeError(ValueError):
    """A reply is not the JSON the API documents (turned into a `QueueApiError` by the caller)."""


class JsonObject:
    """One JSON object of a reply; `what` names it in errors (`JobView`, `QueueStats`)."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, Mapping):
            raise ReplyShapeError(f"{what} is not a JSON object")
        self._fields: Mapping[str, Any] = value
        self._what = what

    def text(self, name: str) -> str:
        value = self._required(name)
        if not isinstance(value, str):
            raise self._wrong(name, "a string")
        return value

    def integer(self, name: str) -> int:
        value = self._required(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "an integer")
        return value

    def number(self, name: str) -> float:
        value = self._required(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(name, "a number")
        return float(value)

    def flag(self, name: str) -> bool:
        value = self._required(name)
        if not isinstance(value, bool):
            raise self._wrong(name, "a boolean")
        return value

    def choice(self, name: str, kind: type[E]) -> E:
        """One of a string enum's values."""
        value = self.text(name)
        try:
            return kind(value)
        except ValueError:
            raise self._wrong(name, "one of " + ", ".join(kind)) from None

    def raw(self, name: str) -> Any:
        """Any JSON value (a job's `result`), None when absent."""
        return self._fields.get(name)

    def nested(self, name: str, parse: Callable[[object], T]) -> T:
        return parse(self._required(name))

    def items(self, name: str, parse: Callable[[object], T]) -> tuple[T, ...]:
        """An array field (absent: empty), each item parsed by `parse`."""
        value = self._fields.get(name, [])
        if not isinstance(value, list):
            raise self._wrong(name, "an array")
        return tuple(parse(item) for item in value)

    def maybe_text(self, name: str) -> str | None:
        return self._maybe(name, self.text)

    def maybe_integer(self, name: str) -> int | None:
        return self._maybe(name, self.integer)

    def maybe_flag(self, name: str) -> bool | None:
        return self._maybe(name, self.flag)

    def maybe_choice(self, name: str, kind: type[E]) -> E | None:
        return self._maybe(name, lambda name: self.choice(name, kind))

    def maybe_nested(self, name: str, parse: Callable[[object], T]) -> T | None:
        return self._maybe(name, lambda name: self.nested(name, parse))

    def maybe_items(self, name: str, parse: Callable[[object], T]) -> tuple[T, ...] | None:
        return self._maybe(name, lambda name: self.items(name, parse))

    def _maybe(self, name: str, read: Callable[[str], T]) -> T | None:
        """`read(name)`, or None when the field is absent or null."""
        return None if self._fields.get(name) is None else read(name)

    def _required(self, name: str) -> Any:
        if name not in self._fields:
            raise ReplyShapeError(f"{self._what} has no {name!r}")
        return self._fields[name]

    def _wrong(self, name: str, description: str) -> ReplyShapeError:
        return ReplyShapeError(f"{self._what}.{name} is not {description}")
