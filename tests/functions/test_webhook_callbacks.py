"""callbackUrl at enqueue (SPEC section 10): who may name which URL, refused before Redis with a
422 naming the field, and the delivery's state as GET /api/status shows it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.config.settings import get_settings
from shared.queue.models import WebhookState, WebhookStatus
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from shared.webhooks.outbox import claim_delivery, record_delivery
from tests.support.api import SERVICE_KEY, QueueApi, make_user_token
from tests.support.clock import FrozenClock
from tests.support.webhook_receiver import end_with_callback

JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
KEYS = QueueKeys("ai-queue")


@pytest.fixture
def webhook_env(api_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "hooks.partner.example,127.0.0.1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def enqueue(api: QueueApi, headers: dict[str, str], url: str) -> Any:
    return await api.enqueue.post("/api/enqueue", json={**JOB, "callbackUrl": url}, headers=headers)


def refusal(response: Any) -> tuple[int, str, list[dict[str, str]]]:
    body = response.json()
    return response.status_code, body["code"], body["errors"]


def refused_because(message: str) -> tuple[int, str, list[dict[str, str]]]:
    return (
        422,
        "validation_failed",
        [{"field": "callbackUrl", "message": message, "type": "callback_refused"}],
    )


@pytest.mark.usefixtures("webhook_env")
async def test_a_service_key_may_name_any_https_host(
    queue_api: QueueApi, service_headers: dict[str, str], redis_direct: redis.Redis
) -> None:
    response = await enqueue(queue_api, service_headers, "https://anyone.example/hooks?x=1")

    assert response.status_code == 202
    assert "callbackUrl" not in response.json()  # private to the worker
    stored = redis_direct.hget(KEYS.job(response.json()["id"]), "callbackUrl")
    assert stored == "https://anyone.example/hooks?x=1"


@pytest.mark.usefixtures("webhook_env")
async def test_a_user_may_name_a_listed_host(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    https = await enqueue(queue_api, user_headers(), "https://hooks.partner.example/done")
    http = await enqueue(queue_api, user_headers(), "http://127.0.0.1:8080/done")

    assert (https.status_code, http.status_code) == (202, 202)


@pytest.mark.usefixtures("webhook_env")
@pytest.mark.parametrize(
    "case",
    [
        ("user", "https://evil.example/x", "names a host that is not in WEBHOOK_ALLOWED_HOSTS"),
        (
            "service",
            "http://anyone.example/x",
            "must be https:// (http:// only for a host in WEBHOOK_ALLOWED_HOSTS)",
        ),
        (
            "service",
            "https://203.0.113.9/x",
            "must name a host, not an IP address, unless it is listed",
        ),
        (
            "service",
            "https://[2001:db8::1]/x",
            "must name a host, not an IP address, unless it is listed",
        ),
        ("service", "https://me:pw@anyone.example/x", "must not carry a user name or password"),
        ("service", "https://anyone.example:99999/x", "is not a valid URL"),
    ],
)
async def test_a_callback_url_the_caller_may_not_name_is_refused_before_redis(
    queue_api: QueueApi,
    gateway_requests: Callable[[], int],
    redis_direct: redis.Redis,
    case: tuple[str, str, str],
) -> None:
    who, url, message = case
    token = make_user_token("user-1") if who == "user" else SERVICE_KEY
    headers = {"Authorization": f"Bearer {token}"}
    before = gateway_requests()

    response = await enqueue(queue_api, headers, url)

    assert refusal(response) == refused_because(message)
    assert gateway_requests() == before
    assert redis_direct.dbsize() == 0


async def test_without_webhook_secret_no_callback_is_accepted(
    queue_api: QueueApi, service_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()

    response = await enqueue(queue_api, service_headers, "https://anyone.example/x")

    assert refusal(response) == refused_because(
        "webhooks need WEBHOOK_SECRET, which is not set on this deployment"
    )


async def test_a_secret_that_gives_no_signing_key_is_a_server_misconfiguration(
    queue_api: QueueApi, service_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"s" * 20).decode())
    get_settings.cache_clear()

    response = await enqueue(queue_api, service_headers, "https://anyone.example/x")

    assert response.status_code == 500
    assert response.json()["code"] == "server_misconfigured"
    assert "at least 24 bytes" in response.json()["detail"]


@pytest.mark.usefixtures("webhook_env")
async def test_the_status_shows_where_the_delivery_stands(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    queue_clock: FrozenClock,
) -> None:
    created = await enqueue(queue_api, user_headers(), "https://hooks.partner.example/done")
    job_id = created.json()["id"]
    location = created.headers["location"]
    before = (await queue_api.status.get(location, headers=user_headers())).json()
    end_with_callback(redis_direct, KEYS, job_id, now_ms=queue_clock.now)
    pending = (await queue_api.status.get(location, headers=user_headers())).json()
    settings = get_settings()
    redis_client = get_redis(settings)
    claimed = await claim_delivery(redis_client, settings, KEYS, job_id, now_ms=queue_clock.now)
    assert claimed is not None
    failed = WebhookState(
        status=WebhookStatus.PENDING, attempts=1, last_error="answered HTTP 503: busy"
    )
    await record_delivery(redis_client, settings, KEYS, claimed, failed, next_try_at_ms=1)

    shown = (await queue_api.status.get(location, headers=user_headers())).json()

    assert "webhook" not in before  # only where it applies
    assert pending["webhook"] == {"status": "pending", "attempts": 0, "lastError": None}
    assert shown["webhook"] == {
        "status": "pending",
        "attempts": 1,
        "lastError": "answered HTTP 503: busy",
    }
