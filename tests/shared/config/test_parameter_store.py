"""Secrets by reference (`NAME_SSM=/parameter`), read from SSM Parameter Store (moto's fake)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence

import boto3
import pytest
from moto import mock_aws

from shared.config.parameter_store import (
    SecretsUnavailable,
    fetch_parameters,
    resolve_secret_references,
)
from shared.config.settings import get_settings
from shared.errors import ServerMisconfigured

GATEWAY_URL = "https://eu1-fine-fox-12345.upstash.io"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    boto3.setup_default_session()


@pytest.fixture
def ssm(aws_env: None) -> Iterator[Callable[..., None]]:
    """`put(name, value, secure=True)` stores a parameter in a fake Parameter Store."""
    with mock_aws():
        client = boto3.client("ssm")

        def put(name: str, value: str, *, secure: bool = True) -> None:
            kind = "SecureString" if secure else "String"
            client.put_parameter(Name=name, Value=value, Type=kind)

        yield put


@pytest.fixture
def get_parameters_calls() -> list[Sequence[str]]:
    """Names asked for in each GetParameters call made through boto3's default session."""
    calls: list[Sequence[str]] = []

    def record(params: Mapping[str, object], **_: object) -> None:
        names = params["Names"]
        assert isinstance(names, list)
        calls.append(names)

    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("provide-client-params.ssm.GetParameters", record)
    return calls


def test_references_resolve_to_decrypted_parameter_values(
    ssm: Callable[..., None],
) -> None:
    ssm("/ai-queue/prod/upstash-token", "secret-token")
    ssm("/ai-queue/prod/upstash-url", GATEWAY_URL, secure=False)

    environ = resolve_secret_references(
        {
            "UPSTASH_REDIS_REST_TOKEN_SSM": "/ai-queue/prod/upstash-token",
            "UPSTASH_REDIS_REST_URL_SSM": "/ai-queue/prod/upstash-url",
            "QUEUE_NAME": "images",
        }
    )

    assert environ["UPSTASH_REDIS_REST_TOKEN"] == "secret-token"
    assert environ["UPSTASH_REDIS_REST_URL"] == GATEWAY_URL
    assert environ["QUEUE_NAME"] == "images"


def test_all_references_are_read_in_one_call_of_at_most_ten_names(
    ssm: Callable[..., None], get_parameters_calls: list[Sequence[str]]
) -> None:
    environ = {}
    for index in range(12):
        ssm(f"/ai-queue/test/secret-{index}", f"value-{index}")
        environ[f"SECRET_{index}_SSM"] = f"/ai-queue/test/secret-{index}"

    resolved = resolve_secret_references(environ)

    assert [resolved[f"SECRET_{index}"] for index in range(12)] == [
        f"value-{index}" for index in range(12)
    ]
    assert [len(names) for names in get_parameters_calls] == [10, 2]


def test_two_variables_may_share_one_parameter(
    ssm: Callable[..., None], get_parameters_calls: list[Sequence[str]]
) -> None:
    ssm("/shared/token", "one-token")

    environ = resolve_secret_references(
        {"UPSTASH_REDIS_REST_TOKEN_SSM": "/shared/token", "KV_REST_API_TOKEN_SSM": "/shared/token"}
    )

    assert environ["UPSTASH_REDIS_REST_TOKEN"] == environ["KV_REST_API_TOKEN"] == "one-token"
    assert get_parameters_calls == [["/shared/token"]]


def test_a_variable_set_directly_wins_over_its_reference() -> None:
    def must_not_fetch(names: Sequence[str]) -> Mapping[str, str]:
        raise AssertionError(f"fetched {names}")

    environ = {"AUTH_JWT_SECRET": "plain", "AUTH_JWT_SECRET_SSM": "/ai-queue/jwt"}

    assert resolve_secret_references(environ, must_not_fetch) == environ


def test_an_empty_reference_is_ignored() -> None:
    environ = {"AUTH_API_KEYS_SSM": ""}

    assert resolve_secret_references(environ, lambda names: {}) == environ


def test_a_missing_parameter_is_a_server_misconfiguration_naming_it(
    ssm: Callable[..., None],
) -> None:
    ssm("/ai-queue/prod/upstash-token", "secret-token")

    with pytest.raises(ServerMisconfigured, match="/ai-queue/prod/jwt-secret"):
        fetch_parameters(["/ai-queue/prod/jwt-secret", "/ai-queue/prod/upstash-token"])


def test_an_unreachable_parameter_store_is_a_503_with_retry_after(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", f"http://127.0.0.1:{closed_port}")

    with pytest.raises(SecretsUnavailable) as raised:
        fetch_parameters(["/ai-queue/prod/upstash-token"])

    assert raised.value.status == 503
    assert raised.value.headers == {"Retry-After": "1"}


def test_get_settings_reads_the_secrets_from_parameter_store(
    ssm: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm("/ai-queue/prod/upstash-url", GATEWAY_URL, secure=False)
    ssm("/ai-queue/prod/upstash-token", "secret-token")
    ssm("/ai-queue/prod/jwt-secret", "jwt-secret-0123456789abcdef-0123456789")
    ssm("/ai-queue/prod/api-key-digests", "ab" * 32)
    for name in ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "AUTH_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AUTH_API_KEYS", raising=False)
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL_SSM", "/ai-queue/prod/upstash-url")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN_SSM", "/ai-queue/prod/upstash-token")
    monkeypatch.setenv("AUTH_JWT_SECRET_SSM", "/ai-queue/prod/jwt-secret")
    monkeypatch.setenv("AUTH_API_KEYS_SSM", "/ai-queue/prod/api-key-digests")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()

    assert settings.upstash_url == GATEWAY_URL
    assert settings.upstash_token == "secret-token"
    assert settings.auth_jwt_secret == "jwt-secret-0123456789abcdef-0123456789"
    assert settings.auth_api_keys == ("ab" * 32,)


def test_settings_without_references_never_import_boto3() -> None:
    code = (
        "import sys\n"
        "from shared.config.settings import load_settings\n"
        "from shared.config.parameter_store import resolve_secret_references\n"
        "environ = {'UPSTASH_REDIS_REST_URL': 'https://x.example',\n"
        "           'UPSTASH_REDIS_REST_TOKEN': 't'}\n"
        "load_settings(resolve_secret_references(environ))\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
