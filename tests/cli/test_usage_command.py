"""`usage`: today's billed commands come from the product's usage meter (`shared.usage`); while
this version has none, the command fails and says where to look instead."""

from __future__ import annotations

import importlib.util

import pytest

from tests.support.cli_runner import RunCli


@pytest.mark.skipif(
    importlib.util.find_spec("shared.usage") is not None, reason="the usage meter exists"
)
def test_usage_without_the_meter_fails_and_says_where_to_look(run_cli: RunCli) -> None:
    ran = run_cli("usage")

    assert ran.code == 1
    assert "usage meter" in ran.stderr
    assert "Upstash console" in ran.stderr
