"""`limits POLICY IDENTIFIER` reads a rate limit without consuming it (the same script as
`ratelimit-check` with `consume: false`); `reset-limit POLICY IDENTIFIER` deletes its state, so
the identifier starts afresh. A warm function instance that cached a denial of it
(`shared.ratelimit.blocked`) keeps refusing until that denial's retry time, at most one window."""

from __future__ import annotations

import argparse

from pydantic import ValidationError
from rich.console import Console

from cli.context import Context
from cli.errors import EXIT_OK, UsageError
from cli.output import table, when
from shared.errors import RedisUnavailable
from shared.ratelimit.checks import RateLimitCheck, checks_for
from shared.ratelimit.decision import Decision, Reason
from shared.ratelimit.models import RateLimitCheckRequest, decision_body
from shared.ratelimit.policies import format_window
from shared.ratelimit.standalone import check_rate_limits
from shared.store.client import call_redis


def limit_checks(ctx: Context, args: argparse.Namespace) -> list[RateLimitCheck]:
    """Every configured policy of that name, for that identifier; UsageError otherwise."""
    try:
        RateLimitCheckRequest(policy=args.policy, identifier=args.identifier, consume=False)
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]} {e['msg'].lower()}" for e in error.errors())
        raise UsageError(problems) from None
    checks = checks_for(ctx.settings, args.policy, args.identifier)
    if not checks:
        names = ", ".join(sorted({p.name for p in ctx.settings.ratelimit_policies}))
        raise UsageError(f"no policy is called {args.policy!r} (RATELIMIT_POLICIES has: {names})")
    return checks


async def limits(ctx: Context, args: argparse.Namespace) -> int:
    checks = limit_checks(ctx, args)
    decision = await check_rate_limits(ctx.settings, checks, consume=False)
    if decision.reason in {Reason.REDIS_UNAVAILABLE, Reason.FAIL_OPEN}:
        raise RedisUnavailable("Upstash did not answer: the rate limit could not be read")
    body = {"identifier": args.identifier, **decision_body(decision)}
    ctx.output.emit(body, lambda console: _print_limits(console, args.identifier, decision))
    return EXIT_OK


def _print_limits(console: Console, identifier: str, decision: Decision) -> None:
    grid = table(
        f"{identifier}: {'allowed' if decision.allowed else 'denied'} now",
        "policy", "limit", "window", "algorithm", "remaining", "resets", "retry after",
    )  # fmt: skip
    for item in decision.policies:
        policy = item.check.policy
        grid.add_row(
            item.check.label, str(policy.limit), format_window(policy.window_ms),
            policy.algorithm.value, str(item.remaining), when(item.reset_ms(decision.now_ms)),
            f"{item.retry_after_s} s" if not item.allowed else "",
        )  # fmt: skip
    console.print(grid)


async def reset_limit(ctx: Context, args: argparse.Namespace) -> int:
    limit_checks(ctx, args)
    key = ctx.keys.rate_limit(args.policy, args.identifier)
    ctx.confirm(f"Reset every {args.policy!r} limit of {args.identifier!r}?")
    deleted = await call_redis(ctx.settings, lambda: ctx.redis.delete(key))
    body = {"policy": args.policy, "identifier": args.identifier, "reset": deleted == 1}
    message = (
        f"reset: {args.identifier!r} starts afresh under {args.policy!r}"
        if deleted
        else f"{args.identifier!r} had no {args.policy!r} state: nothing to reset"
    )
    ctx.output.emit(body, lambda console: console.print(message))
    return EXIT_OK
