"""Credentials an attacker can send (issue 10, "Build and run" 4): forged, expired, unsigned,
wrong-audience, wrong-issuer and wrong-key JWTs, tokens with a missing or oversized `sub`, and
near misses of a service key. Each is a 401 on every function, and nothing reaches Redis: the
gateway serves no request and every key (a real job and its counters) is byte-for-byte as it
was. Service keys are compared with `hmac.compare_digest` against every configured digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from functions import enqueue, ratelimit_check, stats, status
from shared.config.settings import get_settings, load_settings
from shared.errors import Unauthorized
from shared.web import auth
from shared.web.messages import Request
from shared.web.types import ASGIApp
from tests.support.api import JWT_SECRET, SERVICE_KEY
from tests.support.redis_snapshot import untouched_check

# One event loop for the module, as in a warm instance (the Upstash client is built once).
pytestmark = pytest.mark.asyncio(loop_scope="module")

JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
OTHER_SECRET = "not-the-deployment-secret-0123456789abcdef"
AUDIENCE, ISSUER = "ai-app", "https://issuer.example"
LEEWAY_S = auth.CLOCK_LEEWAY_S
Token = Callable[[], str]


@dataclass(frozen=True)
class Functions:
    job_id: str  # a pending job of u-1
    clients: dict[str, httpx.AsyncClient]

    def requests(self) -> list[tuple[httpx.AsyncClient, str, str, Any]]:
        """One call to each function: (client, method, url, JSON body)."""
        job = f"/api/status?id={self.job_id}"
        return [
            (self.clients["enqueue"], "POST", "/api/enqueue", JOB),
            (self.clients["status"], "GET", job, None),
            (self.clients["status"], "DELETE", job, None),
            (self.clients["ratelimit"], "POST", "/api/ratelimit-check", {"policy": "user"}),
            (self.clients["stats"], "GET", "/api/stats", None),
        ]


@pytest_asyncio.fixture(loop_scope="module")
async def functions(
    call_function: Callable[[ASGIApp], httpx.AsyncClient], service_headers: dict[str, str]
) -> Functions:
    """Every function, and a pending job of u-1 (created with the service key, which works
    whatever the JWT configuration of the test)."""
    clients = {
        "enqueue": call_function(enqueue.app),
        "status": call_function(status.app),
        "ratelimit": call_function(ratelimit_check.app),
        "stats": call_function(stats.app),
    }
    created = await clients["enqueue"].post(
        "/api/enqueue", json={**JOB, "userId": "u-1"}, headers=service_headers
    )
    assert created.status_code == 202
    return Functions(created.json()["id"], clients)


@pytest.fixture
def nothing_reached_redis(
    functions: Functions, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> Callable[[], None]:
    return untouched_check(redis_direct, gateway_requests)


async def assert_refused_everywhere(functions: Functions, credential: str) -> None:
    """401 from every function, with the credential as a bearer token and as X-Api-Key."""
    for headers in ({"Authorization": f"Bearer {credential}"}, {"X-Api-Key": credential}):
        for client, method, url, body in functions.requests():
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == 401, (method, url, response.text[:300])
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")


# Building tokens ------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: object) -> str:
    return b64url(json.dumps(value).encode())


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for u-1, with `changes` (a value of None removes the claim)."""
    now_s = int(time.time())
    base: dict[str, Any] = {"sub": "u-1", "iat": now_s, "exp": now_s + 600}
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str = JWT_SECRET, **headers: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


def hand_signed(
    header: dict[str, Any], payload: dict[str, Any], key: bytes, hash_name: str = "sha256"
) -> str:
    """An HMAC over any header, as an attacker's own code (or another library) signs it."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), hash_name).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(alg: str, signature: str = "") -> str:
    return f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims())}.{signature}"


def with_segments(token: str, *, header: str | None = None, payload: str | None = None) -> str:
    parts = token.split(".")
    return ".".join([header or parts[0], payload or parts[1], parts[2]])


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def stranger_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def now_s() -> int:
    return int(time.time())


BAD_TOKENS: dict[str, Token] = {
    # Forged: a valid shape and claims, signed with a key the deployment does not hold.
    "signed with another secret": lambda: hs256(claims(), OTHER_SECRET),
    "another secret and a jku header": lambda: hs256(
        claims(), OTHER_SECRET, jku="http://127.0.0.1:9/jwks.json", kid="attacker"
    ),
    "claims swapped under a valid signature": lambda: with_segments(
        hs256(claims()), payload=segment(claims(sub="admin"))
    ),
    "signature of another token": lambda: with_segments(
        hs256(claims(sub="u-2")), payload=segment(claims())
    ),
    "no signature": lambda: hs256(claims()).rsplit(".", 1)[0] + ".",
    "two segments": lambda: hs256(claims()).rsplit(".", 1)[0],
    "four segments": lambda: hs256(claims()) + ".x",
    # Expired or not yet valid, beyond the 30 s leeway.
    "expired 31 s ago": lambda: hs256(claims(exp=now_s() - LEEWAY_S - 1)),
    "expired a day ago": lambda: hs256(claims(iat=now_s() - 90_000, exp=now_s() - 86_400)),
    "not before a minute from now": lambda: hs256(claims(nbf=now_s() + 2 * LEEWAY_S)),
    "issued an hour from now": lambda: hs256(claims(iat=now_s() + 3600)),
    "no exp": lambda: hs256(claims(exp=None)),
    "exp a string": lambda: hs256(claims(exp="never")),
    # Unsigned (alg none) in every spelling, with and without a signature segment.
    "alg none": lambda: jwt.encode(claims(), None, algorithm="none"),
    "alg None": lambda: unsigned("None"),
    "alg NONE": lambda: unsigned("NONE"),
    "alg nOnE": lambda: unsigned("nOnE"),
    "alg none with a signature": lambda: unsigned("none", hs256(claims()).rsplit(".", 1)[1]),
    "alg empty": lambda: unsigned(""),
    "alg missing": lambda: f"{segment({'typ': 'JWT'})}.{segment(claims())}.",
    "alg a list": lambda: hand_signed({"alg": ["HS256"]}, claims(), JWT_SECRET.encode()),
    "alg in lower case": lambda: hand_signed({"alg": "hs256"}, claims(), JWT_SECRET.encode()),
    # The right secret, but an algorithm the deployment does not accept for it.
    "HS384 with the right secret": lambda: hand_signed(
        {"alg": "HS384"}, claims(), JWT_SECRET.encode(), "sha384"
    ),
    "HS512 with the right secret": lambda: hand_signed(
        {"alg": "HS512"}, claims(), JWT_SECRET.encode(), "sha512"
    ),
    # Another key type: asymmetric tokens when only an HS256 secret is configured.
    "RS256": lambda: jwt.encode(claims(), rsa_key(), algorithm="RS256"),
    "RS256 with a kid": lambda: jwt.encode(
        claims(), rsa_key(), algorithm="RS256", headers={"kid": "rsa-1"}
    ),
    "PS256": lambda: jwt.encode(claims(), rsa_key(), algorithm="PS256"),
    "ES256": lambda: jwt.encode(claims(), ec_key(), algorithm="ES256"),
    # The subject: required, a string of 1 to 256 characters.
    "no sub": lambda: hs256(claims(sub=None)),
    "sub empty": lambda: hs256(claims(sub="")),
    "sub a number": lambda: hs256(claims(sub=42)),
    "sub a list": lambda: hs256(claims(sub=["u-1"])),
    "sub an object": lambda: hs256(claims(sub={"id": "u-1"})),
    "sub of 257 characters": lambda: hs256(claims(sub="u" * 257)),
    "sub of 10000 characters": lambda: hs256(claims(sub="u" * 10_000)),
    # Hostile headers, refused before any signature check.
    "header nested 5000 levels": lambda: (
        b64url(b'{"alg": "HS256", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}") + ".e30.x"
    ),
    "header with a 5000-digit number": lambda: (
        b64url(b'{"alg": "HS256", "x": ' + b"9" * 5000 + b"}") + ".e30.x"
    ),
    "header an array": lambda: f"{segment(['HS256'])}.{segment(claims())}.x",
    "header not base64": lambda: "!!!." + segment(claims()) + ".x",
    "the service key's digest": lambda: hashlib.sha256(SERVICE_KEY.encode()).hexdigest(),
}


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_a_bad_token_is_401_everywhere_and_nothing_reaches_redis(
    functions: Functions, nothing_reached_redis: Callable[[], None], make_token: Token
) -> None:
    await assert_refused_everywhere(functions, make_token())

    nothing_reached_redis()


async def test_a_signed_token_whose_sub_is_not_valid_unicode_is_401(
    functions: Functions, nothing_reached_redis: Callable[[], None]
) -> None:
    await assert_refused_everywhere(functions, hs256(claims(sub="u-\ud800")))

    nothing_reached_redis()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            lambda: hs256(claims(exp=now_s() - LEEWAY_S + 10)), id="expired within leeway"
        ),
        pytest.param(lambda: hs256(claims(nbf=now_s() + LEEWAY_S - 10)), id="nbf within leeway"),
        pytest.param(lambda: hs256(claims(sub="u" * 256)), id="sub of 256 characters"),
    ],
)
async def test_the_limits_themselves_are_accepted(functions: Functions, token: Token) -> None:
    response = await functions.clients["enqueue"].post(
        "/api/enqueue", json=JOB, headers={"Authorization": f"Bearer {token()}"}
    )

    assert response.status_code == 202


# Audience and issuer ---------------------------------------------------------------------------


@pytest.fixture
def audience_and_issuer(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AUTH_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("AUTH_JWT_ISSUER", ISSUER)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


WRONG_AUDIENCE_OR_ISSUER: dict[str, dict[str, Any]] = {
    "another audience": {"aud": "other-app", "iss": ISSUER},
    "no audience": {"iss": ISSUER},
    "audiences without ours": {"aud": ["other-app", "admin"], "iss": ISSUER},
    "empty audience": {"aud": "", "iss": ISSUER},
    "audience in capitals": {"aud": AUDIENCE.upper(), "iss": ISSUER},
    "another issuer": {"aud": AUDIENCE, "iss": "https://evil.example"},
    "no issuer": {"aud": AUDIENCE},
    "issuer with a trailing slash": {"aud": AUDIENCE, "iss": ISSUER + "/"},
    "issuer and audience swapped": {"aud": ISSUER, "iss": AUDIENCE},
}


@pytest.mark.parametrize(
    "registered", WRONG_AUDIENCE_OR_ISSUER.values(), ids=WRONG_AUDIENCE_OR_ISSUER.keys()
)
async def test_a_token_for_another_audience_or_issuer_is_401(
    audience_and_issuer: None,
    functions: Functions,
    nothing_reached_redis: Callable[[], None],
    registered: dict[str, Any],
) -> None:
    await assert_refused_everywhere(functions, hs256(claims(**registered)))

    nothing_reached_redis()


@pytest.mark.parametrize("aud", [AUDIENCE, ["other-app", AUDIENCE]], ids=["ours", "among others"])
async def test_a_token_for_our_audience_and_issuer_is_accepted(
    audience_and_issuer: None, functions: Functions, aud: object
) -> None:
    token = hs256(claims(aud=aud, iss=ISSUER))
    response = await functions.clients["enqueue"].post(
        "/api/enqueue", json=JOB, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 202


# Algorithm confusion against a JWKS deployment --------------------------------------------------


@pytest.fixture
def jwks_only(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """RS256 keys from a JWKS (key `rsa-1`), no HS256 secret: the classic confusion target."""
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key().public_key()))
    document = json.dumps({"keys": [{**public_jwk, "kid": "rsa-1", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.delenv("AUTH_JWT_SECRET")
    monkeypatch.setenv("AUTH_JWKS_URL", f"http://127.0.0.1:{server.server_address[1]}/jwks")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    server.shutdown()
    server.server_close()


def public_pem() -> bytes:
    return (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


JWKS_ATTACKS: dict[str, Token] = {
    "HS256 signed with the public key": lambda: hand_signed(
        {"alg": "HS256", "kid": "rsa-1"}, claims(), public_pem()
    ),
    "HS256 signed with the public key, no kid": lambda: hand_signed(
        {"alg": "HS256"}, claims(), public_pem()
    ),
    "RS256 from another key with our kid": lambda: jwt.encode(
        claims(),
        stranger_rsa_key(),
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    ),
    "alg none with our kid": lambda: (
        f"{segment({'alg': 'none', 'kid': 'rsa-1'})}.{segment(claims())}."
    ),
    "an unknown kid": lambda: jwt.encode(
        claims(), rsa_key(), algorithm="RS256", headers={"kid": "rsa-2"}
    ),
}


@pytest.mark.parametrize("make_token", JWKS_ATTACKS.values(), ids=JWKS_ATTACKS.keys())
async def test_with_a_jwks_a_confused_or_foreign_token_is_401(
    jwks_only: None,
    functions: Functions,
    nothing_reached_redis: Callable[[], None],
    make_token: Token,
) -> None:
    await assert_refused_everywhere(functions, make_token())

    nothing_reached_redis()


async def test_with_a_jwks_a_token_signed_by_its_key_is_accepted(
    jwks_only: None, functions: Functions
) -> None:
    token = jwt.encode(claims(), rsa_key(), algorithm="RS256", headers={"kid": "rsa-1"})
    response = await functions.clients["enqueue"].post(
        "/api/enqueue", json=JOB, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 202


# Service keys -------------------------------------------------------------------------------------

FIRST_KEY, THIRD_KEY = "first-service-key-aaaa", "third-service-key-cccc"
CONFIGURED_KEYS = (FIRST_KEY, SERVICE_KEY, THIRD_KEY)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def three_service_keys(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Three configured digests; ours is the second, the third written in capitals."""
    digests = [digest(FIRST_KEY), digest(SERVICE_KEY), digest(THIRD_KEY).upper()]
    monkeypatch.setenv("AUTH_API_KEYS", ",".join(digests))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("key", CONFIGURED_KEYS, ids=["first", "second", "third"])
async def test_every_configured_service_key_works_whatever_its_position(
    three_service_keys: None, functions: Functions, key: str
) -> None:
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-Api-Key": key}):
        response = await functions.clients["stats"].get("/api/stats", headers=headers)
        assert response.status_code == 200, response.text


NEAR_MISSES: dict[str, str] = {
    "all but the last character": SERVICE_KEY[:-1],
    "the first character": SERVICE_KEY[:1],
    "half of it": SERVICE_KEY[: len(SERVICE_KEY) // 2],
    "one character more": SERVICE_KEY + "x",
    "twice": SERVICE_KEY * 2,
    "in capitals": SERVICE_KEY.upper(),
    "reversed": SERVICE_KEY[::-1],
    "with a space inside": SERVICE_KEY[:4] + " " + SERVICE_KEY[4:],
    "its digest": digest(SERVICE_KEY),
    "its digest in capitals": digest(SERVICE_KEY).upper(),
    "the digest of another key": digest(FIRST_KEY),
    "two keys joined by a comma": f"{FIRST_KEY},{SERVICE_KEY}",
}


@pytest.mark.parametrize("key", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
async def test_a_near_miss_of_a_service_key_is_401_and_nothing_reaches_redis(
    three_service_keys: None,
    functions: Functions,
    nothing_reached_redis: Callable[[], None],
    key: str,
) -> None:
    await assert_refused_everywhere(functions, key)

    nothing_reached_redis()


@pytest.mark.parametrize(
    "credential",
    [FIRST_KEY, THIRD_KEY, "not-a-key", JWT_SECRET],
    ids=["first key", "last key", "unknown key", "a jwt-shaped miss"],
)
async def test_a_presented_key_is_compared_in_constant_time_with_every_configured_digest(
    monkeypatch: pytest.MonkeyPatch, credential: str
) -> None:
    """No early exit: a key that matches the first digest costs the same comparisons as one
    that matches none, each by `hmac.compare_digest`, of the key's digest (never the key)."""
    settings = load_settings(
        {
            "UPSTASH_REDIS_REST_URL": "http://127.0.0.1:1",
            "UPSTASH_REDIS_REST_TOKEN": "t",
            "AUTH_API_KEYS": ",".join(digest(key) for key in CONFIGURED_KEYS),
        }
    )
    compared: list[tuple[str, str]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    request = Request("GET", "/", {}, {"authorization": f"Bearer {credential}"}, b"", None, "r")
    try:
        principal = await auth.authenticate(settings, request)
    except Unauthorized:
        principal = None

    assert [known for _, known in compared] == list(settings.auth_api_keys)
    assert {presented for presented, _ in compared} == {digest(credential)}
    assert (principal is not None) == (credential in CONFIGURED_KEYS)
