"""Helpers for the rate-limit tests: settings aimed at the local gateway and the standalone
script run with an injected clock. (The blocked cache is emptied per test by tests/conftest.py.)"""

from __future__ import annotations

from local.stack import Gateway
from shared.config.settings import Settings, load_settings
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from shared.store.scripts import ScriptArg, load_script, run_script

QUEUE = "rl-test"
# For tests of bursts (200 concurrent checks): what they show is exactness, which must not
# depend on how busy the machine is.
BURST_TIMEOUT_MS = "10000"
KEYS = QueueKeys(QUEUE)


def settings_for(gateway: Gateway, **environ: str) -> Settings:
    """`settings_for(gateway, RATELIMIT_POLICIES="user:5/1m")`."""
    base = {
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
        "QUEUE_NAME": QUEUE,
    }
    return load_settings(base | environ)


async def run_ratelimit_script(
    settings: Settings, keys: list[str], args: list[ScriptArg], now_ms: int
) -> list[int]:
    """The standalone script: `[allowed, now_ms, per policy: allowed, remaining, reset, retry]`."""
    script = load_script("ratelimit/check_rate_limits")
    reply = await run_script(get_redis(settings), settings, script, keys, [now_ms, *args])
    assert isinstance(reply, list)
    return [int(item) for item in reply]  # type: ignore[arg-type]
