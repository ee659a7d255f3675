from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.config.settings import Settings, load_settings
from shared.errors import Forbidden, ServerMisconfigured, Unauthorized
from shared.web.auth import Principal, authenticate
from shared.web.messages import Request

SECRET = "unit-test-secret-0123456789-abcdefghij"
SERVICE_KEY = "svc-key-1"
UPSTASH = {"UPSTASH_REDIS_REST_URL": "http://127.0.0.1:1", "UPSTASH_REDIS_REST_TOKEN": "t"}


def settings_with(**variables: str) -> Settings:
    return load_settings({**UPSTASH, **variables})


def request_with(headers: dict[str, str]) -> Request:
    return Request(
        method="GET",
        path="/",
        query={},
        headers={name.lower(): value for name, value in headers.items()},
        body=b"",
        source_ip="127.0.0.1",
        request_id="r",
    )


def bearer(token: str) -> Request:
    return request_with({"Authorization": f"Bearer {token}"})


def token(
    claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256", **header: Any
) -> str:
    now_s = int(time.time())
    return jwt.encode({"iat": now_s, "exp": now_s + 60, **claims}, key, algorithm, headers=header)


@pytest.fixture
def hs256() -> Settings:
    return settings_with(
        AUTH_JWT_SECRET=SECRET, AUTH_API_KEYS=hashlib.sha256(SERVICE_KEY.encode()).hexdigest()
    )


async def test_a_user_token_acts_as_its_subject(hs256: Settings) -> None:
    principal = await authenticate(hs256, bearer(token({"sub": "user-7"})))

    assert principal == Principal(user_id="user-7", is_service=False)


async def test_a_service_key_is_recognised_by_its_digest(hs256: Settings) -> None:
    principal = await authenticate(hs256, bearer(SERVICE_KEY))

    assert principal == Principal(user_id=None, is_service=True)


async def test_a_service_key_may_come_in_x_api_key(hs256: Settings) -> None:
    principal = await authenticate(hs256, request_with({"X-Api-Key": SERVICE_KEY}))

    assert principal.is_service


@pytest.mark.parametrize(
    "credential",
    [
        token({"sub": "u"}, key="another-secret-0123456789-abcdefghij"),
        token({"sub": "u", "exp": int(time.time()) - 3600}),
        token({"exp": int(time.time()) + 60}),
        token({"sub": ""}),
        token({"sub": 42}),
        jwt.encode({"sub": "u"}, SECRET, "HS256"),
        "svc-key-2",
        "not.a.jwt",
    ],
    ids=[
        "wrong-secret",
        "expired",
        "no-sub",
        "empty-sub",
        "numeric-sub",
        "no-exp",
        "unknown-service-key",
        "garbage",
    ],
)
async def test_bad_credentials_are_refused(hs256: Settings, credential: str) -> None:
    with pytest.raises(Unauthorized):
        await authenticate(hs256, bearer(credential))


async def test_an_unsigned_token_is_refused(hs256: Settings) -> None:
    unsigned = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, None, algorithm="none")

    with pytest.raises(Unauthorized):
        await authenticate(hs256, bearer(unsigned))


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer "}]
)
async def test_missing_credentials_are_a_401_with_a_challenge(
    hs256: Settings, headers: dict[str, str]
) -> None:
    with pytest.raises(Unauthorized) as raised:
        await authenticate(hs256, request_with(headers))

    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer")


async def test_no_auth_configuration_refuses_everyone_as_misconfigured() -> None:
    with pytest.raises(ServerMisconfigured, match="AUTH_"):
        await authenticate(settings_with(), bearer(SERVICE_KEY))


async def test_with_only_service_keys_a_jwt_is_refused() -> None:
    settings = settings_with(AUTH_API_KEYS=hashlib.sha256(b"k").hexdigest())

    with pytest.raises(Unauthorized):
        await authenticate(settings, bearer(token({"sub": "u"})))


async def test_audience_and_issuer_are_checked_when_configured() -> None:
    settings = settings_with(
        AUTH_JWT_SECRET=SECRET, AUTH_JWT_AUDIENCE="ai-app", AUTH_JWT_ISSUER="https://issuer"
    )
    good = token({"sub": "u", "aud": "ai-app", "iss": "https://issuer"})
    wrong_audience = token({"sub": "u", "aud": "other", "iss": "https://issuer"})

    assert (await authenticate(settings, bearer(good))).user_id == "u"
    with pytest.raises(Unauthorized):
        await authenticate(settings, bearer(wrong_audience))


def test_only_service_keys_pass_require_service() -> None:
    Principal(user_id=None, is_service=True).require_service()

    with pytest.raises(Forbidden):
        Principal(user_id="u", is_service=False).require_service()


class JwksServer:
    def __init__(self) -> None:
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.fetches = 0
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key()))
        self.document = json.dumps(
            {"keys": [{**rsa_jwk, "kid": "rsa-1", "use": "sig"}, {**ec_jwk, "kid": "ec-1"}]}
        ).encode()


@pytest.fixture
def jwks() -> Iterator[tuple[JwksServer, str]]:
    keys = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.fetches += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(keys.document)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield keys, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


async def test_rs256_and_es256_tokens_verify_against_the_jwks_fetched_once(
    jwks: tuple[JwksServer, str],
) -> None:
    keys, url = jwks
    settings = settings_with(AUTH_JWKS_URL=url)
    rsa_token = token({"sub": "r"}, keys.rsa_key, "RS256", kid="rsa-1")
    ec_token = token({"sub": "e"}, keys.ec_key, "ES256", kid="ec-1")

    assert (await authenticate(settings, bearer(rsa_token))).user_id == "r"
    assert (await authenticate(settings, bearer(ec_token))).user_id == "e"
    assert keys.fetches == 1


async def test_a_jwks_token_signed_by_another_key_is_refused(
    jwks: tuple[JwksServer, str],
) -> None:
    _keys, url = jwks
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = token({"sub": "r"}, stranger, "RS256", kid="rsa-1")

    with pytest.raises(Unauthorized):
        await authenticate(settings_with(AUTH_JWKS_URL=url), bearer(forged))
