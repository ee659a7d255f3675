"""Every documented operation, fuzzed with schemathesis from the OpenAPI document (issue 10):
requests generated from the schemas, valid and invalid, sent as a user and as a service key
through the dev server's ASGI app to the functions, on real Redis behind the local gateway.

No response is a 5xx; every status, content type, header and body is the documented one; every
error is application/problem+json. The run prints how many requests it sent, per status.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.dev_server import dev_app
from local.stack import Gateway
from shared.config.settings import get_settings
from shared.ratelimit.blocked import blocked
from shared.web.openapi import openapi_document
from shared.web.types import ASGIApp, Message, Receive, Scope, Send
from tests.support.api import SERVICE_KEY, make_user_token

# Enough to reach every branch the schemas open (each operation also gets its coverage cases:
# boundaries, missing and wrong-typed fields) while the whole module stays within ~60 s.
MAX_EXAMPLES = 60
# Low enough that the fuzzed enqueues meet a denial, high enough that most are queued.
POLICIES = "user:12/1m,ip:30/1m"
CLIENT = ("203.0.113.7", 40000)
STATEFUL = settings(
    max_examples=15, stateful_step_count=6, deadline=None, database=None, derandomize=True
)

schema = schemathesis.openapi.from_dict(openapi_document())
# Credentials are the principal's own (never generated), so each run is that principal's.
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, deterministic=True, database="none", with_security_parameters=False
)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing", "stateful"])


def problem_json_errors(_ctx: CheckContext, response: schemathesis.Response, _case: object) -> bool:
    """Every error is application/problem+json."""
    content_type = response.headers.get("content-type", [""])[0]
    if response.status_code >= 400:
        assert content_type == "application/problem+json", f"{response.status_code} {content_type}"
    return True


CREDENTIALS = {
    "user": lambda: {"Authorization": f"Bearer {make_user_token('fuzz-user')}"},
    "service": lambda: {"X-API-Key": SERVICE_KEY},
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_json_errors,
]


@pytest.fixture(scope="module")
def sent(pytestconfig: pytest.Config) -> Iterator[Counter[str]]:
    """Requests that reached the app, by `<principal> <status>`; reported when the module ends
    (on the terminal, whatever the capture mode)."""
    counts: Counter[str] = Counter()
    started = time.monotonic()
    yield counts
    elapsed = time.monotonic() - started
    by_status = ", ".join(f"{key}: {count}" for key, count in sorted(counts.items()))
    plugins = pytestconfig.pluginmanager
    with plugins.getplugin("capturemanager").global_and_fixture_disabled():
        plugins.getplugin("terminalreporter").write_line(
            f"\nschemathesis: {counts.total()} requests fuzzed in {elapsed:.1f} s ({by_status})"
        )


@pytest.fixture
def fuzz_env(api_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RATELIMIT_POLICIES", POLICIES)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def apps(sent: Counter[str]) -> dict[str, ASGIApp]:
    """Per principal, the dev server called from a fixed client address, counting each response
    by status (one app each for the whole module: the ASGI transport keeps an app's lifespan)."""

    def counting(principal: str) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            async def counted(message: Message) -> None:
                if message["type"] == "http.response.start":
                    sent[f"{principal} {message['status']}"] += 1
                await send(message)

            await dev_app({**scope, "client": CLIENT}, receive, counted)

        return app

    return {principal: counting(principal) for principal in CREDENTIALS}


@pytest.mark.parametrize("principal", sorted(CREDENTIALS))
@schema.parametrize()
# The fixtures set the environment once per operation; nothing in them changes per example.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_response_is_documented(
    case: schemathesis.Case, principal: str, fuzz_env: None, apps: dict[str, ASGIApp]
) -> None:
    case.call_and_validate(app=apps[principal], headers=CREDENTIALS[principal](), checks=CHECKS)


@pytest.mark.parametrize("principal", sorted(CREDENTIALS))
def test_every_response_is_documented_along_the_links(
    principal: str, fuzz_env: None, apps: dict[str, ASGIApp], redis_direct: redis.Redis
) -> None:
    """Sequences that follow the document's links: a job enqueued, then read and cancelled.
    Each sequence starts from an empty database, so replaying one gives the same answers."""

    class Linked(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            redis_direct.flushdb()
            blocked.clear()

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"app": apps[principal], "headers": CREDENTIALS[principal]()}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: object
        ) -> None:
            kwargs.pop("additional_checks", None)
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Linked.run(settings=STATEFUL)
