"""The clients against the real product: `python -m local.dev` (its own Redis, gateway and demo
worker) started once for the session, and the Python client importable from clients/python, as
an app that installed it would import it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.api import SERVICE_KEY, make_user_token
from tests.support.dev_server import DevServer, start_dev_server

PYTHON_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"
sys.path.insert(0, str(PYTHON_CLIENT))


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path_factory.mktemp("dev") / "output.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def unreachable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """The functions, with no Upstash where they look for it."""
    log = tmp_path_factory.mktemp("dev-unreachable") / "output.log"
    server = start_dev_server(log, unreachable=True)
    yield server
    server.stop()


@pytest.fixture
def user_token() -> Callable[[str], str]:
    return make_user_token


@pytest.fixture
def service_key() -> str:
    return SERVICE_KEY
