"""Which commands each token may run, and which no REST request may run at all."""

from __future__ import annotations

from local.gateway.protocol import Command, GatewayError

# Commands that never change data, by data type; anything else is a write for the read-only
# token. Deliberately conservative: admin commands (CONFIG, SCRIPT, INFO, ...) are refused too.
_READ_ONLY_GROUPS = (
    "get mget strlen getrange substr exists ttl pttl expiretime pexpiretime type keys scan",
    "randomkey dbsize dump lcs ping echo time eval_ro evalsha_ro fcall_ro sort_ro",
    "hget hmget hgetall hkeys hvals hlen hexists hstrlen hscan hrandfield",
    "lrange llen lindex lpos",
    "smembers sismember smismember scard srandmember sscan sinter sintercard sunion sdiff",
    "zrange zrangebyscore zrevrangebyscore zrangebylex zrevrangebylex zrevrange zscore zmscore",
    "zrank zrevrank zcard zcount zlexcount zscan zrandmember zinter zintercard zunion zdiff",
    "geopos geodist geohash georadius_ro georadiusbymember_ro geosearch",
    "bitcount bitpos getbit bitfield_ro pfcount",
    "xrange xrevrange xlen xread xinfo xpending",
)
READ_ONLY_COMMANDS = frozenset(name for group in _READ_ONLY_GROUPS for name in group.split())

# They change the state of the pooled connection itself, which the next request would inherit.
_CONNECTION_STATE_GROUPS = (
    "multi exec discard watch unwatch select client reset quit hello auth monitor sync psync",
    "subscribe psubscribe ssubscribe unsubscribe punsubscribe sunsubscribe",
)
CONNECTION_STATE_COMMANDS = frozenset(
    name for group in _CONNECTION_STATE_GROUPS for name in group.split()
)


def command_name(command: Command) -> str:
    return command[0].decode("utf-8", "replace").lower()


def check_allowed(command: Command, *, read_only: bool) -> None:
    name = command_name(command)
    if name in CONNECTION_STATE_COMMANDS:
        raise GatewayError(400, f"ERR Command is not allowed over REST: {name}")
    if read_only and name not in READ_ONLY_COMMANDS:
        raise GatewayError(401, f"NOPERM this user has no permissions to run the '{name}' command")
