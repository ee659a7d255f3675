"""clients/js: its types are what openapi.json generates, it compiles with the pinned
TypeScript (clients/js/package-lock.json; `make test` runs `npm ci` for it), and its tests pass
under Node's own test runner against the dev server. Each test file of clients/js/test is one
test here, so a failure names the feature; node's output is shown on failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.api import JWT_SECRET, SERVICE_KEY, make_user_token
from tests.support.dev_server import DevServer

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
README_IMPORT = "./clients/js/build/src/index.js"
TSC = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
NODE_TESTS = sorted(path.name for path in (CLIENT / "test").glob("*.test.mjs"))
BUILD_TIMEOUT_S = 300
TEST_TIMEOUT_S = 600


def node() -> str:
    """The `node` binary (Node 20+); its absence fails the run, in CI and everywhere else."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (20 or later) is not on PATH: the JS client's tests need it")
    return found


def run(
    command: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=CLIENT, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
    )


@pytest.fixture(scope="module")
def compiled() -> None:
    """clients/js/build, compiled from src by the pinned TypeScript."""
    if not TSC.exists():
        pytest.fail("TypeScript is not installed for clients/js: run `npm ci --prefix clients/js`")
    compile_run = run([node(), str(TSC), "-p", "tsconfig.json"], BUILD_TIMEOUT_S)
    assert compile_run.returncode == 0, compile_run.stdout + compile_run.stderr


def test_types_ts_is_what_openapi_json_generates() -> None:
    check = run([node(), "scripts/generate-types.mjs", "--check"], 60)

    assert check.returncode == 0, check.stdout + check.stderr


def test_the_client_compiles_without_node_types(compiled: None) -> None:
    assert (CLIENT / "build" / "src" / "index.js").is_file()
    assert (CLIENT / "build" / "src" / "index.d.ts").is_file()


def test_the_node_tests_are_found() -> None:
    assert "client.test.mjs" in NODE_TESTS


@pytest.mark.parametrize("test_file", NODE_TESTS)
def test_the_node_tests_pass_against_the_dev_server(
    test_file: str, compiled: None, dev_server: DevServer, unreachable_server: DevServer
) -> None:
    environment = os.environ | {
        "QUEUE_BASE_URL": dev_server.base_url,
        "QUEUE_UNREACHABLE_URL": unreachable_server.base_url,
        "QUEUE_JWT_SECRET": JWT_SECRET,
        "QUEUE_SERVICE_KEY": SERVICE_KEY,
    }

    tests = run([node(), "--test", f"test/{test_file}"], TEST_TIMEOUT_S, env=environment)

    assert tests.returncode == 0, f"node --test test/{test_file}:\n{tests.stdout}\n{tests.stderr}"


def test_the_readme_example_queues_a_job_and_watches_it_to_its_result(
    compiled: None, dev_server: DevServer, tmp_path: Path
) -> None:
    readme = (CLIENT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^```js\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    assert found, "clients/js/README.md has no ```js example"
    module = (CLIENT / "build" / "src" / "index.js").as_uri()
    assert README_IMPORT in found.group(1)
    script = tmp_path / "fox.mjs"
    script.write_text(found.group(1).replace(README_IMPORT, module), encoding="utf-8")
    environment = os.environ | {
        "QUEUE_URL": dev_server.base_url,
        "TOKEN": make_user_token("js-readme-reader"),
    }

    example = run([node(), str(script)], TEST_TIMEOUT_S, env=environment)

    assert example.returncode == 0, example.stdout + example.stderr
    assert "completed 100%" in example.stdout
    assert re.search(r'^result completed \{.*"prompt":"a red fox"', example.stdout, re.MULTILINE)
