"""POST /api/ratelimit-check: check, and by default consume, a configured rate limit.

Always 200 with the decision in the body and the SPEC section 5 headers (a denial is an answer,
not an error). Users are limited as themselves (`ip`: their address); only a service key may
name an `identifier` (403 otherwise) or refund (negative `cost`).
"""

from __future__ import annotations

from shared.errors import Forbidden, ValidationFailed
from shared.ratelimit.checks import RateLimitCheck, checks_for
from shared.ratelimit.models import RateLimitCheckRequest, decision_body
from shared.ratelimit.standalone import check_rate_limits
from shared.web.caller import Caller, identify
from shared.web.endpoint import endpoint
from shared.web.lambda_adapter import lambda_handler
from shared.web.messages import Request, Response, json_response
from shared.web.validation import field_error, parse_json


async def check(request: Request) -> Response:
    caller = await identify(request)
    body, checks = parse_checks(caller, request)
    decision = await check_rate_limits(
        caller.settings, checks, cost=body.cost, consume=body.consume
    )
    return json_response(200, decision_body(decision), decision.headers())


def parse_checks(
    caller: Caller, request: Request
) -> tuple[RateLimitCheckRequest, list[RateLimitCheck]]:
    body = parse_json(request, RateLimitCheckRequest)
    configured = {policy.name for policy in caller.settings.ratelimit_policies}
    if body.policy not in configured:
        names = ", ".join(sorted(configured))
        raise invalid("policy", f"no policy is called {body.policy!r} (configured: {names})")
    return body, checks_for(caller.settings, body.policy, identifier(caller, body))


def identifier(caller: Caller, body: RateLimitCheckRequest) -> str:
    if caller.principal.is_service:
        if body.identifier is None:
            raise invalid("identifier", "a service key must name the identifier to check")
        return body.identifier
    if body.identifier is not None:
        raise Forbidden("only a service key may name an identifier; users check their own")
    if body.cost < 0:
        raise Forbidden("only a service key may refund (negative cost)")
    if body.cost > caller.settings.ratelimit_user_max_cost:
        limit = caller.settings.ratelimit_user_max_cost
        raise Forbidden(f"users may spend at most cost {limit} per call (RATELIMIT_USER_MAX_COST)")
    if body.policy != "ip":
        return caller.principal.user_id or ""
    if caller.ip is None:
        raise invalid("policy", "the caller's IP address is not known to this deployment")
    return caller.ip


def invalid(field: str, message: str) -> ValidationFailed:
    return field_error("the request does not match the schema", field, message)


app = endpoint({"POST": check})
handler = lambda_handler(app)
