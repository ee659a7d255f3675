"""Rate-limit policies as configured in `RATELIMIT_POLICIES`, e.g. `user:10/1m,user:100/1d@fixed`.

Each entry is `<name>:<limit>/<window>[@<algorithm>]`. `user` policies key on the caller's user
id, `ip` policies on the client IP; any other name is checked only through `ratelimit-check`
with an identifier a service key supplies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Algorithm(StrEnum):
    SLIDING = "sliding"
    FIXED = "fixed"
    TOKEN = "token"  # noqa: S105 - an algorithm name, not a secret


WINDOW_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_WINDOW_MS = 366 * 86_400_000
MAX_LIMIT = 1_000_000_000
# The Lua mirror of algorithms.py computes on doubles, exact below 2^53; limit x window stays
# below 2^52 so that every product and sum in the window arithmetic is exact (52M per day).
MAX_LIMIT_TIMES_WINDOW_MS = 2**52
_ENTRY = re.compile(
    r"^(?P<name>[a-z][a-z0-9_-]{0,31}):(?P<limit>\d{1,10})/(?P<count>\d{1,7})?(?P<unit>ms|s|m|h|d)"
    r"(?:@(?P<algorithm>[a-z]+))?$"
)


class PolicyParseError(ValueError):
    """`RATELIMIT_POLICIES` is not a comma-separated list of `name:limit/window[@algorithm]`."""


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int
    window_ms: int
    algorithm: Algorithm

    @property
    def window_s(self) -> int:
        return max(1, self.window_ms // 1000)

    @property
    def window_label(self) -> str:
        return format_window(self.window_ms)


def parse_policies(text: str) -> tuple[Policy, ...]:
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise PolicyParseError("no policies given (expected e.g. 'user:100/1d,ip:20/1h')")
    policies = tuple(_parse_entry(entry) for entry in entries)
    _reject_duplicates(policies)
    return policies


def _parse_entry(entry: str) -> Policy:
    match = _ENTRY.match(entry)
    if match is None:
        raise PolicyParseError(
            f"{entry!r} is not of the form name:limit/window[@sliding|@fixed|@token]"
        )
    limit = int(match["limit"])
    window_ms = int(match["count"] or 1) * WINDOW_UNITS_MS[match["unit"]]
    if not 1 <= limit <= MAX_LIMIT:
        raise PolicyParseError(f"{entry!r}: limit must be between 1 and {MAX_LIMIT}")
    if not 1_000 <= window_ms <= MAX_WINDOW_MS:
        raise PolicyParseError(f"{entry!r}: window must be between 1s and 366d")
    if limit * window_ms > MAX_LIMIT_TIMES_WINDOW_MS:
        raise PolicyParseError(f"{entry!r}: limit too high for that window (at most 52M per day)")
    try:
        algorithm = Algorithm(match["algorithm"] or Algorithm.SLIDING)
    except ValueError:
        raise PolicyParseError(
            f"{entry!r}: unknown algorithm {match['algorithm']!r} (sliding, fixed or token)"
        ) from None
    return Policy(name=match["name"], limit=limit, window_ms=window_ms, algorithm=algorithm)


def _reject_duplicates(policies: tuple[Policy, ...]) -> None:
    seen: set[tuple[str, int]] = set()
    for policy in policies:
        key = (policy.name, policy.window_ms)
        if key in seen:
            raise PolicyParseError(
                f"two '{policy.name}' policies share the window {format_window(policy.window_ms)}"
            )
        seen.add(key)


def format_window(window_ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        size = WINDOW_UNITS_MS[unit]
        if window_ms % size == 0:
            return f"{window_ms // size}{unit}"
    return f"{window_ms}ms"


def policy_label(policy: Policy, policies: Sequence[Policy]) -> str:
    """The name when no other configured policy shares it, else `<name>-<window>` (`user-1m`)."""
    namesakes = sum(1 for other in policies if other.name == policy.name)
    return policy.name if namesakes <= 1 else f"{policy.name}-{policy.window_label}"
