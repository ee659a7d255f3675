from __future__ import annotations

import pytest

from shared.config.settings import get_settings, load_settings
from shared.errors import ServerMisconfigured
from shared.ratelimit.policies import Algorithm

REQUIRED = {"UPSTASH_REDIS_REST_URL": "https://eu1.upstash.io", "UPSTASH_REDIS_REST_TOKEN": "t0k"}


def test_defaults_match_the_spec() -> None:
    settings = load_settings(REQUIRED)

    assert settings.queue_name == "ai-queue"
    assert [(p.name, p.limit, p.window_ms) for p in settings.ratelimit_policies] == [
        ("user", 100, 86_400_000),
        ("ip", 20, 3_600_000),
    ]
    assert settings.ratelimit_fail_mode == "closed"
    assert settings.redis_timeout_ms == 2000
    assert (settings.max_job_data_bytes, settings.max_result_bytes) == (65536, 262144)
    assert settings.job_retention_s == 86400
    assert settings.trusted_ip_header is None
    assert not settings.auth_configured


def test_vercel_kv_names_are_accepted_as_fallbacks() -> None:
    settings = load_settings({"KV_REST_API_URL": "https://kv.example", "KV_REST_API_TOKEN": "kv"})

    assert (settings.upstash_url, settings.upstash_token) == ("https://kv.example", "kv")


def test_upstash_names_win_over_the_fallbacks() -> None:
    settings = load_settings({**REQUIRED, "KV_REST_API_URL": "https://kv.example"})

    assert settings.upstash_url == "https://eu1.upstash.io"


def test_several_policies_per_kind_and_algorithm_suffixes_parse() -> None:
    settings = load_settings(
        {**REQUIRED, "RATELIMIT_POLICIES": "user:10/1m@fixed, user:100/1d@token,ip:20/1h"}
    )

    assert [p.algorithm for p in settings.ratelimit_policies] == [
        Algorithm.FIXED,
        Algorithm.TOKEN,
        Algorithm.SLIDING,
    ]


def test_api_key_digests_are_normalised_to_lowercase() -> None:
    digest = "AB" * 32

    assert load_settings({**REQUIRED, "AUTH_API_KEYS": f" {digest} "}).auth_api_keys == ("ab" * 32,)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("UPSTASH_REDIS_REST_URL", "eu1.upstash.io"),
        ("QUEUE_NAME", "bad{name}"),
        ("RATELIMIT_POLICIES", "user:100"),
        ("RATELIMIT_POLICIES", "user:100/1d@leaky"),
        ("RATELIMIT_POLICIES", "user:10/1m,user:20/1m"),
        ("RATELIMIT_FAIL_MODE", "maybe"),
        ("AUTH_API_KEYS", "not-a-digest"),
        ("AUTH_JWT_SECRET", "short"),
        ("AUTH_JWKS_URL", "file:///etc/keys"),
        ("TRUSTED_IP_HEADER", "x real ip"),
        ("REDIS_TIMEOUT_MS", "2s"),
        ("REDIS_TIMEOUT_MS", "0"),
        ("REDIS_URL", "http://localhost:6379"),
        ("MAX_JOB_DATA_BYTES", "-1"),
        ("MAX_RESULT_BYTES", "lots"),
        ("JOB_RETENTION_S", "1"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ServerMisconfigured, match=variable) as raised:
        load_settings({**REQUIRED, variable: value})

    assert raised.value.status == 500
    assert raised.value.code == "server_misconfigured"


def test_a_missing_upstash_url_is_reported_as_not_set() -> None:
    with pytest.raises(ServerMisconfigured, match="UPSTASH_REDIS_REST_URL is not set"):
        load_settings({"UPSTASH_REDIS_REST_TOKEN": "t"})


def test_settings_are_read_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    first = get_settings()
    monkeypatch.setenv("QUEUE_NAME", "other")

    assert get_settings() is first
    get_settings.cache_clear()


def test_importing_every_module_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing happens at import time: a cold start with no variables must not crash."""
    import importlib
    import pkgutil
    import sys

    for name in list(sys.modules):
        if name.split(".")[0] in {"shared", "functions"}:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr("os.environ", {})
    for package in ("shared", "functions"):
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            importlib.import_module(f"{package}.{info.name}")
