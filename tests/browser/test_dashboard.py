"""The dashboard at work in headless Chromium (SPEC 11): the page of `GET /api/dashboard`, served
by the dev server's functions against real Redis behind the gateway, asks for a service key once,
shows what `GET /api/stats` and `GET /api/jobs?status=failed` say, keeps polling, and its retry
button puts a failed job back to pending. A screenshot of the board is saved as
build/browser/dashboard.png."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from local.stack import Gateway
from shared.queue.beat import BeatRequest, beat
from shared.queue.leases import fail_job
from shared.queue.models import JobError, JobStatus
from tests.support.api import SERVICE_KEY
from tests.support.browser import Browser
from tests.support.clock import real_now_ms
from tests.support.harness import QueueHarness, make_harness
from tests.support.queue_states import QueueStates, fill_every_state

WAIT_S = 30  # generous: the page polls every 5 s on a noisy machine
WORKER_ID = "gpu-worker-1"
MARKUP = '<img src=x onerror="document.body.dataset.pwned=1"><b>bold</b>'
COUNTS = ("pending", "delayed", "processing", "completed", "failed", "cancelled")
KEY_ITEM = "aiQueue.dashboard.serviceKey"


@pytest.fixture
def api_url(serve_functions: Callable[..., str]) -> str:
    digest = hashlib.sha256(SERVICE_KEY.encode()).hexdigest()
    return serve_functions(AUTH_API_KEYS=digest) + "/api"


@pytest.fixture
def api(api_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
async def harness(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


@pytest.fixture
async def states(harness: QueueHarness) -> QueueStates:
    """Jobs in every state two minutes old, one more failed job whose error is markup, and a
    worker's heartbeat."""
    now = real_now_ms()
    states = await fill_every_state(harness, now - 120_000, per_state=2, users=("ana", "ben"))
    job_id = await harness.enqueue(now - 60_000, "mallory", type="image.upscale", priority=0)
    claimed = await harness.claim_one(now - 60_000)
    assert claimed.lease.job_id == job_id
    error = JobError(message=MARKUP, kind="ValueError")
    await fail_job(
        harness.redis, harness.settings, harness.keys, claimed.lease, error, retry_at_ms=None,
        now_ms=now - 30_000,
    )  # fmt: skip
    states.add(JobStatus.FAILED, job_id)
    worker = BeatRequest(worker_id=WORKER_ID, held=[], concurrency=4, now_ms=now)
    await beat(harness.redis, harness.settings, harness.keys, worker)
    return states


def get_json(api: httpx.Client, path: str, **params: str) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def wait_until(browser: Browser, what: str, condition: Callable[[], object]) -> None:
    WebDriverWait(browser.driver, WAIT_S).until(lambda _: condition(), message=what)


def by_id(browser: Browser, element_id: str) -> WebElement:
    return browser.driver.find_element(By.ID, element_id)


def body_data(browser: Browser, name: str) -> str:
    return str(browser.driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{name}"))


def page_state(browser: Browser) -> str:
    return body_data(browser, "state")


def refreshes(browser: Browser) -> int:
    return int(body_data(browser, "refreshes"))


def open_with_key(browser: Browser, url: str) -> None:
    browser.open(url)
    wait_until(browser, "the key form", lambda: page_state(browser) == "login")
    by_id(browser, "key").send_keys(SERVICE_KEY)
    browser.driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait_until(browser, "the board", lambda: page_state(browser) == "ready")


def shown_counts(browser: Browser) -> dict[str, str]:
    return {name: by_id(browser, f"count-{name}").text for name in COUNTS}


def expected_counts(stats: dict[str, Any]) -> dict[str, str]:
    return {name: f"{stats[name]:,}" for name in COUNTS}


def failure_rate(stats: dict[str, Any]) -> str:
    finished = stats["completedLastHour"] + stats["failedLastHour"]
    return f"{100 * stats['failedLastHour'] / finished:.1f}%" if finished else "-"


def failed_rows(browser: Browser) -> dict[str, str]:
    """The failed jobs' rows, id to text, read in one go (each refresh replaces the rows)."""
    rows: list[list[str]] = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('#failed-jobs tbody tr'),"
        " (row) => [row.dataset.jobId, row.innerText]);"
    )
    return dict(rows)


def click_retry(browser: Browser, job_id: str) -> None:
    """Click the job's retry button; again if a refresh replaced the row meanwhile."""

    def click() -> bool:
        try:
            browser.driver.find_element(By.CSS_SELECTOR, f"button[data-retry='{job_id}']").click()
        except StaleElementReferenceException:
            return False
        return True

    wait_until(browser, f"a click on the retry button of {job_id}", click)


def worker_rows(browser: Browser) -> list[str]:
    rows: list[str] = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('#workers tbody tr'),"
        " (row) => row.dataset.workerId);"
    )
    return rows


def shown_usage(browser: Browser) -> dict[str, str]:
    entries: list[list[str]] = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('#usage dd'),"
        " (dd) => [dd.dataset.usage, dd.textContent]);"
    )
    return dict(entries)


def test_loading_the_page_costs_nothing_until_a_key_is_given(
    browser: Browser, api_url: str, gateway_requests: Callable[[], int]
) -> None:
    before = gateway_requests()
    browser.open(f"{api_url}/dashboard")
    wait_until(browser, "the key form", lambda: page_state(browser) == "login")

    assert by_id(browser, "key").get_attribute("type") == "password"
    assert not by_id(browser, "board").is_displayed()
    assert gateway_requests() == before


def test_a_refused_key_is_forgotten_and_asked_for_again(browser: Browser, api_url: str) -> None:
    browser.open(f"{api_url}/dashboard")
    wait_until(browser, "the key form", lambda: page_state(browser) == "login")
    by_id(browser, "key").send_keys("not-the-service-key")
    browser.driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait_until(browser, "the refusal", lambda: "refused" in by_id(browser, "login-error").text)

    assert page_state(browser) == "login"
    assert "401" in by_id(browser, "login-error").text
    assert browser.driver.execute_script(f"return sessionStorage.getItem('{KEY_ITEM}')") is None


def test_the_board_shows_the_stats_keeps_polling_and_retries_a_failed_job(
    browser: Browser, api_url: str, api: httpx.Client, states: QueueStates
) -> None:
    browser.driver.set_window_size(1280, 1700)
    open_with_key(browser, f"{api_url}/dashboard")
    stats = get_json(api, "/stats")
    failed = get_json(api, "/jobs", status="failed", limit="20")

    # The numbers are those of GET /api/stats and GET /api/jobs?status=failed.
    assert shown_counts(browser) == expected_counts(stats)
    assert by_id(browser, "completed-last-hour").text == f"{stats['completedLastHour']:,}"
    assert by_id(browser, "failed-last-hour").text == f"{stats['failedLastHour']:,}"
    assert by_id(browser, "failure-rate").text == failure_rate(stats) != "-"
    assert by_id(browser, "oldest-pending").text.endswith(" s")
    assert worker_rows(browser) == [worker["id"] for worker in stats["workers"]]
    assert [worker["id"] for worker in stats["workers"]] == [WORKER_ID]
    assert list(failed_rows(browser)) == [job["id"] for job in failed["jobs"]]
    assert set(failed_rows(browser)) == set(states.of(JobStatus.FAILED))
    if "usage" in stats:  # today's billed commands, once stats carry them
        usage = shown_usage(browser)
        assert usage["day"] == stats["usage"]["day"]
        assert 0 <= int(usage["commands"].replace(",", "")) <= stats["usage"]["commands"]

    # A value from the API is text, never markup.
    (markup_job,) = (job["id"] for job in failed["jobs"] if job["userId"] == "mallory")
    assert f"ValueError: {MARKUP}" in failed_rows(browser)[markup_job]
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#board img, #board b") == []
    assert browser.driver.execute_script("return document.body.dataset.pwned") is None

    # The key is asked for once: a reload of the tab goes straight to the board.
    assert browser.driver.execute_script(f"return sessionStorage.getItem('{KEY_ITEM}')") == (
        SERVICE_KEY
    )
    browser.driver.refresh()
    wait_until(browser, "the board after a reload", lambda: page_state(browser) == "ready")

    # It keeps polling: a new job shows up without a click.
    enqueued = api.post("/enqueue", json={"type": "image.generate", "data": {}})
    assert enqueued.status_code == 202, enqueued.text
    pending_now = f"{get_json(api, '/stats')['pending']:,}"
    wait_until(
        browser, "the new pending count", lambda: shown_counts(browser)["pending"] == pending_now
    )

    # Retry puts the failed job back to pending, and the board follows.
    target = states.of(JobStatus.FAILED)[0]
    click_retry(browser, target)
    wait_until(browser, "the retry", lambda: "pending again" in by_id(browser, "retry-result").text)
    job = get_json(api, "/status", id=target)
    assert (job["status"], job["attempts"]) == ("pending", 0)
    wait_until(browser, "the row to go", lambda: target not in failed_rows(browser))
    after = get_json(api, "/stats")
    wait_until(
        browser,
        "the counts after the retry",
        lambda: shown_counts(browser) == expected_counts(after),
    )
    assert after["failed"] == stats["failed"] - 1
    assert after["pending"] == stats["pending"] + 2  # the new job and the retried one

    wait_until(browser, "a few chart readings", lambda: refreshes(browser) >= 3)
    samples = int(by_id(browser, "chart").get_attribute("data-samples") or 0)
    lines = browser.driver.find_elements(By.CSS_SELECTOR, "#chart polyline")
    assert samples >= 3
    assert [line.get_attribute("data-series") for line in lines] == ["completed", "failed"]
    browser.screenshot("dashboard")
    console = browser.console_messages()
    assert not [line for line in console if "Content Security Policy" in line], console
