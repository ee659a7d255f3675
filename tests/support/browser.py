"""Headless Chromium for browser tests: Debian's `chromium` driven through its `chromedriver`
(Selenium, never Selenium Manager: nothing is downloaded), with a fresh profile each time and
screenshots under build/browser/ on request; and pages served from origins of their own.

Without Chromium or chromedriver on PATH a browser test fails when `CI` is set (CI installs them,
see .ci/run) and is skipped otherwise, with a reason that `make test`'s summary repeats
(`report_skipped_browser_tests`, called from tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # Selenium is imported when a browser starts: the summary hook needs none
    from selenium import webdriver

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_DIR = ROOT / "build" / "browser"
BROWSER_TESTS_DIR = "tests/browser/"
MISSING_PREFIX = "BROWSER TESTS NOT RUN"
INSTALL_HINT = "sudo apt-get install -y chromium chromium-driver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGE_LOAD_TIMEOUT_S = 30
SCRIPT_TIMEOUT_S = 30


@dataclass(frozen=True)
class Binaries:
    chromium: str
    chromedriver: str


@dataclass
class Browser:
    driver: webdriver.Chrome
    screenshots_dir: Path

    def open(self, url: str) -> None:
        self.driver.get(url)

    def run_async(self, script: str, *arguments: object) -> Any:
        """`script` gets `arguments` then the callback to call with its result, as
        `execute_async_script` passes them."""
        return self.driver.execute_async_script(script, *arguments)

    def console_messages(self) -> list[str]:
        """The page's console since the last call (Chromium reports blocked CORS calls here)."""
        entries = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [str(entry["message"]) for entry in entries]

    def screenshot(self, name: str) -> Path:
        self.screenshots_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshots_dir / f"{name}.png"
        if not self.driver.save_screenshot(str(path)):
            raise RuntimeError(f"chromium could not save the screenshot {path}")
        return path


def find_binaries() -> Binaries | None:
    chromium = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        return None
    return Binaries(chromium=chromium, chromedriver=chromedriver)


def require_binaries() -> Binaries:
    """Chromium and chromedriver, or a loud failure (under CI) or skip (elsewhere)."""
    binaries = find_binaries()
    if binaries is not None:
        return binaries
    missing = " and ".join(name for name in ("chromium", "chromedriver") if not shutil.which(name))
    reason = f"{MISSING_PREFIX}: {missing} not on PATH; install them with `{INSTALL_HINT}`"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def headless_chromium(
    binaries: Binaries, *, screenshots_dir: Path = SCREENSHOTS_DIR
) -> Iterator[Browser]:
    from selenium import webdriver  # imported here: see the TYPE_CHECKING import
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = webdriver.Chrome(
            options=_options(binaries, Path(profile)),
            service=Service(executable_path=binaries.chromedriver),
        )
        try:
            driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
            driver.set_script_timeout(SCRIPT_TIMEOUT_S)
            yield Browser(driver=driver, screenshots_dir=screenshots_dir)
        finally:
            driver.quit()


@contextmanager
def serve_page(html: str) -> Iterator[str]:
    """`html` at every path of a new origin, `http://127.0.0.1:<port>`, which is yielded."""
    page = html.encode()

    class PageHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a test's output is not a request log

    server = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def report_skipped_browser_tests(terminalreporter: pytest.TerminalReporter) -> None:
    """A section at the end of the run naming the skipped browser tests and why."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if report.nodeid.startswith(BROWSER_TESTS_DIR)
    ]
    if not skipped:
        return
    reasons = sorted({_skip_reason(report) for report in skipped})
    terminalreporter.section(f"{MISSING_PREFIX} ({len(skipped)} skipped)", sep="!", red=True)
    for reason in reasons:
        terminalreporter.line(reason, red=True, bold=True)


def _options(binaries: Binaries, profile: Path) -> webdriver.ChromeOptions:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = binaries.chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)
