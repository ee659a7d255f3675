"""Which limits apply: a `RateLimitCheck` is one configured policy applied to one identifier."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.settings import Settings
from shared.ratelimit.policies import Policy, policy_label


@dataclass(frozen=True)
class RateLimitCheck:
    """`label` is unique among the configured policies (`user`, or `user-1m` when repeated)."""

    policy: Policy
    identifier: str
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.policy.name)


def checks_for(settings: Settings, name: str, identifier: str) -> list[RateLimitCheck]:
    """Every configured policy called `name`, applied to `identifier`."""
    return [
        RateLimitCheck(policy, identifier, policy_label(policy, settings.ratelimit_policies))
        for policy in settings.ratelimit_policies
        if policy.name == name
    ]


def checks_for_enqueue(
    settings: Settings, user_id: str, client_ip: str | None
) -> list[RateLimitCheck]:
    """Every configured `user` and `ip` policy that applies to this caller (none for an empty
    user id or an unknown IP)."""
    checks = checks_for(settings, "user", user_id) if user_id else []
    return checks + (checks_for(settings, "ip", client_ip) if client_ip else [])
