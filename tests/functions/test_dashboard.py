"""GET /api/dashboard: one self-contained HTML page, to anyone, that costs no Upstash request and
reads no settings; its Content-Security-Policy allows nothing but the page's own inline script
and style and requests to its own origin. (The page at work: tests/browser/test_dashboard.py.)

Its script also runs here on node, against a stand-in DOM that knows only the page's ids
(`render_board`): what one reading of /api/stats puts in a panel, without a browser."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from functions import dashboard
from local.dev_server import dev_app
from shared.config.settings import get_settings
from shared.web.types import ASGIApp
from tests.support.platform_events import (
    LAMBDA_SOURCES,
    Call,
    lambda_context,
    make_event,
    read_response,
)

SETTINGS_PREFIXES = ("UPSTASH_", "KV_", "AUTH_", "CORS_", "RATELIMIT_", "QUEUE_NAME")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched
NODE_TIMEOUT_S = 60
STATS = {
    "pending": 4, "delayed": 0, "processing": 3, "completed": 10, "failed": 1, "cancelled": 0,
    "completedLastHour": 10, "failedLastHour": 1, "oldestPendingAgeMs": 5000, "workers": [],
}  # fmt: skip
CONCURRENCY = {
    "types": [
        {"type": "audio.transcribe", "running": 1, "limit": None},
        {"type": "image.generate", "running": 2, "limit": 2},
        {"type": "text.summarize", "running": 0, "limit": 5},
    ],
    "users": [{"userId": "<b>ana</b>", "running": 2}, {"userId": "ben", "running": 1}],
    "userLimit": 3,
}
# The page's script in a context of its own: a key in sessionStorage (so it opens the board),
# fetch answering `stats` with the given body and `jobs` with an empty page, timers that never
# fire, and elements for the page's ids only (another id is null, as in a browser). It prints
# the board once the refresh settles.
BOARD_ON_NODE = r"""
const vm = require('node:vm');
const { script, ids, stats } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
class Element {
  constructor(tag) {
    Object.assign(this, { tag, kids: [], own: '', dataset: {}, hidden: false, value: '' });
    this.clientWidth = 720;
  }
  set textContent(text) { this.own = String(text); this.kids = []; }
  get textContent() { return this.own + this.kids.map((kid) => kid.textContent).join(''); }
  get tBodies() { return [(this.body ??= new Element('tbody'))]; }
  append(...nodes) { this.kids.push(...nodes); }
  replaceChildren(...nodes) { this.kids = nodes; }
  setAttribute() {}
  addEventListener() {}
  focus() {}
}
const elements = new Map(ids.map((id) => [id, new Element(id)]));
const storage = new Map([['aiQueue.dashboard.serviceKey', 'a-key']]);
const answers = { stats, jobs: { jobs: [], nextCursor: null } };
const document = {
  hidden: false,
  body: new Element('body'),
  getElementById: (id) => elements.get(id) ?? null,
  createElement: (tag) => new Element(tag),
  createElementNS: (_space, tag) => new Element(tag),
  addEventListener() {},
};
const sessionStorage = {
  getItem: (name) => storage.get(name) ?? null,
  setItem: (name, value) => storage.set(name, String(value)),
  removeItem: (name) => storage.delete(name),
};
const fetch = async (url) => {
  const body = answers[url.pathname.split('/').pop()];
  return { ok: true, status: 200, json: async () => body };
};
const location = { pathname: '/api/dashboard', origin: 'http://test' };
const never = () => 0;
vm.runInNewContext(script, {
  document, sessionStorage, fetch, location, URL, console, setTimeout: never, clearTimeout: never,
});
setImmediate(() => {
  const element = (id) => elements.get(id);
  const rows = (id) => element(id).tBodies[0].kids.map((row) => ({
    data: { ...row.dataset },
    cells: row.kids.map((cell) => cell.textContent),
    tags: row.kids.map((cell) => cell.kids.map((kid) => kid.tag)),
  }));
  const hidden = Object.fromEntries(ids.map((id) => [id, element(id).hidden]));
  console.log(JSON.stringify({
    state: document.body.dataset.state,
    problem: element('problem').textContent,
    hidden,
    note: element('concurrency-note').textContent,
    types: rows('concurrency-types'),
    users: rows('concurrency-users'),
  }));
});
"""


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def fetch_page() -> httpx.Response:
    async with client(dashboard.app) as anonymous:
        return await anonymous.get("/api/dashboard")


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    parsed = (directive.split() for directive in directives if directive.strip())
    return {name: sources for name, *sources in parsed}


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def inline(page: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", page, flags=re.DOTALL)


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (20 or later) is not on PATH: the dashboard's script runs on it here")
    return found


def render_board(stats: dict[str, Any]) -> dict[str, Any]:
    """The board after the served page's script read `stats` (see BOARD_ON_NODE)."""
    page = asyncio.run(fetch_page()).text
    (script,) = inline(page, "script")
    ids = re.findall(r'\bid="([^"]+)"', page)
    ran = subprocess.run(
        [node(), "-e", BOARD_ON_NODE],
        input=json.dumps({"script": script, "ids": ids, "stats": stats}),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    board: dict[str, Any] = json.loads(ran.stdout)
    assert board["state"] == "ready", board["problem"]
    return board


async def test_anyone_gets_the_page_and_no_upstash_request_is_made(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    response = await call_function(dashboard.app).get("/api/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!doctype html>")
    assert 'id="key-form"' in response.text
    assert response.headers["x-request-id"]
    assert gateway_requests() == before


async def test_the_page_is_served_without_any_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    try:
        response = await fetch_page()
    finally:
        get_settings.cache_clear()

    assert response.status_code == 200


async def test_the_policy_allows_only_the_pages_own_script_and_style() -> None:
    response = await fetch_page()
    (script,) = inline(response.text, "script")
    (style,) = inline(response.text, "style")

    assert policy(response) == {
        "default-src": ["'none'"],
        "script-src": [sha256_source(script)],
        "style-src": [sha256_source(style)],
        "connect-src": ["'self'"],
        "img-src": ["data:"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_loads_nothing_from_anywhere_else() -> None:
    page = (await fetch_page()).text

    assert set(re.findall(r"https?://[^\s'\"`)]+", page)) == {SVG_NAMESPACE}
    assert re.findall(r"\b(?:src|href)=\"([^\"]*)\"", page) == ["data:,"]  # the empty favicon
    assert "<script src" not in page
    assert "@import" not in page


async def test_the_page_never_turns_data_into_markup() -> None:
    page = (await fetch_page()).text

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in page
    assert "textContent" in page


async def test_the_page_may_be_cached_for_five_minutes() -> None:
    response = await fetch_page()

    assert response.headers.get_list("cache-control") == ["public, max-age=300"]


async def test_only_get_is_served() -> None:
    async with client(dashboard.app) as anonymous:
        response = await anonymous.post("/api/dashboard", json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_the_dev_server_routes_it() -> None:
    async with client(dev_app) as anonymous:
        response = await anonymous.get("/api/dashboard")

    assert response.status_code == 200
    assert response.text == (await fetch_page()).text


@pytest.mark.parametrize("source", LAMBDA_SOURCES)
def test_the_lambda_handler_serves_the_page_with_its_policy(source: str) -> None:
    asyncio.set_event_loop(loop := asyncio.new_event_loop())
    try:
        raw = dashboard.handler(make_event(source, Call("GET", "/api/dashboard")), lambda_context())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    response = read_response(source, raw)

    assert response.status == 200
    assert response.body.decode().startswith("<!doctype html>")
    assert (response.header("Content-Security-Policy") or "").startswith("default-src 'none'")
    assert not raw.get("isBase64Encoded")


async def test_the_concurrency_panel_is_hidden_until_stats_fill_it() -> None:
    page = (await fetch_page()).text

    assert '<section class="panel" id="concurrency-panel" hidden>' in page
    for table_id, first in (("concurrency-types", "type"), ("concurrency-users", "user")):
        header = re.search(rf'<table id="{table_id}">\s*<thead><tr>(.*?)</tr>', page)
        assert header, table_id
        assert re.findall(r"<th>(.*?)</th>", header[1]) == [first, "running", "limit"]


def test_the_concurrency_panel_shows_each_type_and_user_against_its_limit() -> None:
    board = render_board(STATS | {"concurrency": CONCURRENCY})

    assert not board["hidden"]["concurrency-panel"]
    assert [row["cells"] for row in board["types"]] == [
        ["audio.transcribe", "1", "-"],
        ["image.generate", "2", "2"],
        ["text.summarize", "0", "5"],
    ]
    assert board["types"][1]["data"] == {"type": "image.generate"}
    assert [row["cells"] for row in board["users"]] == [["<b>ana</b>", "2", "3"], ["ben", "1", "3"]]
    assert board["users"][0]["tags"][0] == ["code"]  # the id is the text of a <code>
    assert board["note"] == "(at most 3 running per user)"
    assert board["hidden"]["no-concurrency-users"]


def test_limits_with_nothing_running_show_the_types_and_say_no_user_runs() -> None:
    idle = {"types": [{"type": "image.generate", "running": 0, "limit": 2}], "users": []}
    board = render_board(STATS | {"concurrency": idle | {"userLimit": None}})

    assert not board["hidden"]["concurrency-panel"]
    assert [row["cells"] for row in board["types"]] == [["image.generate", "0", "2"]]
    assert board["users"] == []
    assert board["hidden"]["concurrency-users"]
    assert not board["hidden"]["no-concurrency-users"]
    assert board["note"] == ""


@pytest.mark.parametrize(
    "concurrency",
    [{"types": [], "users": [], "userLimit": None}, None, "not an object"],
    ids=["no-limits", "null", "a-string"],
)
def test_the_concurrency_panel_stays_hidden_without_limits(concurrency: object) -> None:
    board = render_board(STATS | {"concurrency": concurrency})

    assert board["hidden"]["concurrency-panel"]


def test_stats_without_a_concurrency_section_leave_the_panel_hidden() -> None:
    board = render_board(STATS)

    assert board["hidden"]["concurrency-panel"]
    assert board["types"] == board["users"] == []
