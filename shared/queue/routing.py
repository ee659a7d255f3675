"""Which jobs a worker may claim (SPEC section 13): the types it runs and the concurrency limits.

- `TypeFilter`: `python -m worker --types image.generate,text.*` claims only jobs of those
  types; a name ending in `*` takes every type that starts with what precedes it. Each entry
  becomes a prefix of the `lanes` members (`<type>|...`, see `shared.store.keys`), so the claim
  reads exactly the jobs of those types, however many jobs of other types wait before them.
- `ConcurrencyLimits`: `TYPE_CONCURRENCY="image.generate:4,text.summarize:20"` and
  `USER_CONCURRENCY=N`, checked by the claim script against the running jobs recorded in
  `slots`, across all workers. Every worker of a queue must be given the same limits: a worker
  without them neither checks nor records slots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.queue.models import JOB_TYPE_PATTERN

MAX_TYPE_ENTRIES = 32
MAX_TYPE_LIMIT = 100_000
_TYPE = re.compile(JOB_TYPE_PATTERN)
_TYPE_PREFIX = re.compile(r"^[a-z0-9_.:-]{0,63}\*$")
LANE_SEPARATOR = "|"  # never in a type (JOB_TYPE_PATTERN)


@dataclass(frozen=True)
class TypeFilter:
    """The job types a worker claims; empty: every type."""

    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TypeFilter:
        """`a,b,text.*` -> a filter; ValueError naming a bad entry. `*` alone is every type."""
        entries = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        if not entries:
            raise ValueError("--types needs at least one job type")
        if len(entries) > MAX_TYPE_ENTRIES:
            raise ValueError(f"--types takes at most {MAX_TYPE_ENTRIES} entries")
        for entry in entries:
            if not (_TYPE.match(entry) or _TYPE_PREFIX.match(entry)):
                raise ValueError(
                    f"{entry!r} is not a job type (1-64 of a-z 0-9 _ . : -) nor a prefix "
                    "ending in * (such as text.*)"
                )
        if "*" in entries:
            return cls()
        return cls(entries)

    @property
    def lane_prefixes(self) -> list[str]:
        """What the claim script reads in `lanes`: `<type>|` for a name, the prefix for `p*`."""
        return [
            entry[:-1] if entry.endswith("*") else entry + LANE_SEPARATOR for entry in self.entries
        ]

    def matches(self, job_type: str) -> bool:
        """Whether the claim would take a job of `job_type`: its lane member starts with one
        of the lane prefixes."""
        member = job_type + LANE_SEPARATOR
        return not self.entries or any(member.startswith(p) for p in self.lane_prefixes)

    def __str__(self) -> str:
        return ",".join(self.entries) or "*"


@dataclass(frozen=True)
class ConcurrencyLimits:
    """At most `types[t]` running jobs of type t, and `per_user` per user, across all workers."""

    types: tuple[tuple[str, int], ...] = ()
    per_user: int | None = None

    def limit_of(self, job_type: str) -> int | None:
        return dict(self.types).get(job_type)


def parse_type_limits(text: str) -> tuple[tuple[str, int], ...]:
    """`image.generate:4,text.summarize:20` -> pairs; ValueError naming a bad entry. A type may
    contain `:`, so each entry splits at its last one."""
    limits: dict[str, int] = {}
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        job_type, _, count = part.rpartition(":")
        if not _TYPE.match(job_type) or not count.isdigit():
            raise ValueError(f"{part!r} is not <job type>:<limit>, e.g. image.generate:4")
        if not 1 <= int(count) <= MAX_TYPE_LIMIT:
            raise ValueError(f"the limit of {job_type} must be 1-{MAX_TYPE_LIMIT}")
        if job_type in limits:
            raise ValueError(f"{job_type} is listed twice")
        limits[job_type] = int(count)
    return tuple(limits.items())
