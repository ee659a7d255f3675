"""Storage in use, where the server reports it: `INFO memory` (1 billed command).

Upstash serves INFO over REST with the sections server, clients, memory, stats, cluster and
keyspace (not commandstats), as a CRLF-separated text report whose fields may change, so it is
read defensively: `used_memory` is required, `maxmemory` is the limit when present and not 0.
Upstash's own daily command and storage counters live in its Developer API
(`GET https://api.upstash.com/v2/redis/stats/{id}`: `daily_net_commands`, `diskusage`, ...),
which takes the account's email and API key, not a database token: the product cannot read it.
"""

from __future__ import annotations

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.store.client import call_redis
from shared.store.replies import as_str
from shared.usage.models import StorageUsage


def parse_info(text: str) -> dict[str, str]:
    """`field:value` lines of an INFO report; section headings and blank lines skipped."""
    fields = {}
    for line in text.splitlines():
        name, separator, value = line.strip().partition(":")
        if separator and name and not name.startswith("#"):
            fields[name] = value
    return fields


def storage_from_info(text: str) -> StorageUsage:
    fields = parse_info(text)
    try:
        used = int(fields["used_memory"])
        limit = int(fields.get("maxmemory") or 0)
    except (KeyError, ValueError):
        raise BadRedisReply(f"INFO memory has no used_memory number: {text[:200]!r}") from None
    return StorageUsage(used_bytes=used, limit_bytes=limit if limit > 0 else None)


async def storage_usage(redis: Redis, settings: Settings) -> StorageUsage:
    reply = await call_redis(
        settings, lambda: redis.execute(["INFO", "memory"]), safe_to_repeat=True
    )
    return storage_from_info(as_str(reply, "INFO memory"))
