"""CORS in a real browser (SPEC section 10): headless Chromium on a page of a listed origin
enqueues with a credentialed `fetch` (Authorization, JSON and Idempotency-Key force a preflight)
and reads the exposed headers; a page on another origin is refused by the browser before its
request is sent. The functions run as the dev server serves them, with CORS_ALLOW_ORIGINS
listing the first page's origin only."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.support.api import make_user_token
from tests.support.browser import Browser, serve_page
from tests.support.scripts import preload_scripts

PAGE = "<!doctype html><meta charset=utf-8><title>{0}</title><h1>{0}</h1><pre id=result></pre>"
JOB = {"type": "image.generate", "data": {"prompt": "a red fox"}}
# Runs in the page: `arguments` are the URL, the token, the idempotency key, the job and the
# callback; the result is also shown on the page, for a screenshot.
ENQUEUE_FROM_THE_PAGE = """
const [url, token, idempotencyKey, job, done] = arguments;
const show = (result) => {
  document.getElementById('result').textContent = JSON.stringify(result, null, 2);
  done(result);
};
fetch(url, {
  method: 'POST',
  credentials: 'include',
  headers: {
    Authorization: 'Bearer ' + token,
    'Content-Type': 'application/json',
    'Idempotency-Key': idempotencyKey,
  },
  body: JSON.stringify(job),
})
  .then(async (response) => show({
    status: response.status,
    location: response.headers.get('Location'),
    requestId: response.headers.get('X-Request-Id'),
    rateLimit: response.headers.get('RateLimit'),
    body: await response.json(),
  }))
  .catch((error) => show({error: error.name, message: error.message}));
"""


@pytest.fixture
def listed_page() -> Iterator[str]:
    with serve_page(PAGE.format("listed origin")) as origin:
        yield origin


@pytest.fixture
def other_page() -> Iterator[str]:
    with serve_page(PAGE.format("unlisted origin")) as origin:
        yield origin


@pytest.fixture
def api_url(
    serve_functions: Callable[..., str], listed_page: str, redis_direct: redis.Redis
) -> str:
    preload_scripts(redis_direct)  # a warm deployment: an enqueue is one Upstash request
    return serve_functions(CORS_ALLOW_ORIGINS=listed_page) + "/api"


def enqueue_from(browser: Browser, page: str, api_url: str, token: str) -> dict[str, Any]:
    browser.open(page)
    key = f"browser-{uuid.uuid4().hex}"
    result: dict[str, Any] = browser.run_async(
        ENQUEUE_FROM_THE_PAGE, f"{api_url}/enqueue", token, key, JOB
    )
    return result


def test_a_page_on_a_listed_origin_enqueues_and_reads_the_exposed_headers(
    browser: Browser,
    listed_page: str,
    api_url: str,
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    result = enqueue_from(browser, listed_page, api_url, make_user_token("browser-user"))
    browser.screenshot("cors-listed-origin")

    assert result["status"] == 202, result
    assert result["body"]["userId"] == "browser-user"
    assert result["location"] == f"/api/status?id={result['body']['id']}"
    assert result["requestId"]
    assert result["rateLimit"]
    assert gateway_requests() - before == 1  # the enqueue; its preflight cost nothing


def test_an_error_reaches_a_page_on_a_listed_origin(
    browser: Browser, listed_page: str, api_url: str
) -> None:
    result = enqueue_from(browser, listed_page, api_url, "not-a-token")

    assert result["status"] == 401, result
    assert result["body"]["code"] == "unauthorized"
    assert result["requestId"] == result["body"]["requestId"]


def test_a_page_on_another_origin_is_refused_before_its_request_is_sent(
    browser: Browser,
    other_page: str,
    api_url: str,
    gateway_requests: Callable[[], int],
    redis_direct: redis.Redis,
) -> None:
    before = gateway_requests()
    result = enqueue_from(browser, other_page, api_url, make_user_token("browser-user"))
    browser.screenshot("cors-unlisted-origin")

    assert result["error"] == "TypeError", result
    console = "\n".join(browser.console_messages())
    assert "blocked by CORS policy" in console, console
    assert "preflight" in console, console
    assert gateway_requests() == before
    assert redis_direct.dbsize() == 0  # the POST itself never left the browser
