"""The REST protocol over plain HTTP: request forms, auth, status codes, encodings, stats."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from local.stack import Gateway

TEN_MIB = 10 * 1024 * 1024


def test_json_command_returns_the_result(http: httpx.Client) -> None:
    assert http.post("/", json=["SET", "k", "v"]).json() == {"result": "OK"}
    assert http.post("/", json=["GET", "k"]).json() == {"result": "v"}


def test_path_form_with_get_and_post(http: httpx.Client) -> None:
    assert http.get("/set/k/v").json() == {"result": "OK"}
    assert http.post("/get/k").json() == {"result": "v"}


def test_path_segments_are_percent_decoded(http: httpx.Client, redis_direct) -> None:
    http.get("/set/a%2Fb/hello%20world")
    assert redis_direct.get("a/b") == "hello world"


def test_query_pairs_become_extra_arguments(http: httpx.Client, redis_direct) -> None:
    assert http.get("/set/k/v?EX=100").json() == {"result": "OK"}
    assert redis_direct.ttl("k") == 100


def test_post_body_in_path_form_is_the_last_argument(http: httpx.Client, redis_direct) -> None:
    assert http.post("/set/k", content=b"from the body").json() == {"result": "OK"}
    assert redis_direct.get("k") == "from the body"


def test_ping_path_answers_pong(http: httpx.Client) -> None:
    response = http.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"result": "PONG"}
    assert response.headers["content-type"] == "application/json"


def test_token_in_query_is_accepted_and_not_an_argument(gateway: Gateway, redis_direct) -> None:
    response = httpx.get(f"{gateway.url}/set/k/v", params={"_token": gateway.token})
    assert response.json() == {"result": "OK"}
    assert redis_direct.get("k") == "v"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_missing_or_wrong_token_is_401(gateway: Gateway, headers) -> None:
    response = httpx.get(f"{gateway.url}/ping", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_read_only_token_write_is_401_with_noperm(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.read_only_token}"}
    response = httpx.post(gateway.url, json=["DEL", "k"], headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "NOPERM this user has no permissions to run the 'del' command"
    }


def test_read_only_token_cannot_sneak_a_write_into_a_pipeline(
    gateway: Gateway, redis_direct
) -> None:
    headers = {"Authorization": f"Bearer {gateway.read_only_token}"}
    body = [["GET", "k"], ["SET", "k", "v"]]
    response = httpx.post(f"{gateway.url}/pipeline", json=body, headers=headers)
    assert response.status_code == 401
    assert redis_direct.get("k") is None


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405(http: httpx.Client, method: str) -> None:
    response = http.request(method, "/get/k")
    assert response.status_code == 405


def test_json_endpoints_need_post(http: httpx.Client) -> None:
    assert http.get("/").status_code == 405
    assert http.get("/pipeline").status_code == 405


def test_body_over_the_limit_is_413(http: httpx.Client, redis_direct) -> None:
    response = http.post("/set/k", content=b"x" * (TEN_MIB + 1))
    assert response.status_code == 413
    assert "error" in response.json()
    assert redis_direct.get("k") is None


def test_body_at_the_limit_is_accepted(http: httpx.Client, redis_direct) -> None:
    assert http.post("/set/k", content=b"x" * TEN_MIB).status_code == 200
    assert redis_direct.strlen("k") == TEN_MIB


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"a": 1}', b"[]", b'[["GET"]]', b'["SET", "k", null]', b'["SET", "k", {}]'],
)
def test_bad_json_or_command_shape_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/", content=body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_redis_error_is_400_with_redis_text(http: httpx.Client) -> None:
    http.post("/", json=["SET", "k", "v"])
    response = http.post("/", json=["LPUSH", "k", "x"])
    assert response.status_code == 400
    assert response.json() == {
        "error": "WRONGTYPE Operation against a key holding the wrong kind of value"
    }
    unknown = http.post("/", json=["NOSUCHCOMMAND", "x"])
    assert unknown.json()["error"].startswith("ERR unknown command")


def test_numbers_and_booleans_become_their_text(http: httpx.Client, redis_direct) -> None:
    http.post("/pipeline", json=[["SET", "i", 42], ["SET", "f", 0.5], ["SET", "b", False]])
    http.post("/", content=b'["SET", "exact", 1.50]')
    assert redis_direct.mget("i", "f", "b", "exact") == ["42", "0.5", "false", "1.50"]


def test_replies_keep_resp2_shapes(http: httpx.Client) -> None:
    http.post("/", json=["HSET", "h", "f", "v", "n", 1])
    http.post("/", json=["ZADD", "z", 1.5, "a", 2, "b"])
    assert http.post("/", json=["HGETALL", "h"]).json() == {"result": ["f", "v", "n", "1"]}
    assert http.post("/", json=["ZRANGE", "z", 0, -1, "WITHSCORES"]).json() == {
        "result": ["a", "1.5", "b", "2"]
    }
    assert http.post("/", json=["HINCRBY", "h", "n", 2]).json() == {"result": 3}
    assert http.post("/", json=["GET", "missing"]).json() == {"result": None}
    assert http.post("/", json=["EVAL", "return {1, {'x', false}}", 0]).json() == {
        "result": [1, ["x", None]]
    }


def test_base64_encodes_every_string_but_ok(http: httpx.Client) -> None:
    headers = {"Upstash-Encoding": "base64"}
    assert http.post("/", json=["SET", "k", "vé"], headers=headers).json() == {"result": "OK"}
    encoded = base64.b64encode("vé".encode()).decode()
    assert http.post("/", json=["GET", "k"], headers=headers).json() == {"result": encoded}
    assert http.post("/", json=["PING"], headers=headers).json() == {"result": "UE9ORw=="}
    assert http.post("/", json=["MGET", "k", "none"], headers=headers).json() == {
        "result": [encoded, None]
    }
    assert http.post("/", json=["STRLEN", "k"], headers=headers).json() == {"result": 3}


def test_invalid_utf8_is_replaced_without_base64_and_kept_with_it(http: httpx.Client) -> None:
    http.post("/set/k", content=b"a\xffb")
    assert http.post("/", json=["GET", "k"]).json() == {"result": "a\ufffdb"}
    encoded = http.post("/", json=["GET", "k"], headers={"Upstash-Encoding": "base64"})
    assert base64.b64decode(encoded.json()["result"]) == b"a\xffb"


def test_pipeline_returns_one_outcome_per_command_with_status_200(http: httpx.Client) -> None:
    http.post("/", json=["SET", "text", "x"])
    response = http.post("/pipeline", json=[["INCR", "n"], ["LPUSH", "text", "y"], ["GET", "n"]])
    assert response.status_code == 200
    assert response.json() == [
        {"result": 1},
        {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        {"result": "1"},
    ]


def test_multi_exec_with_a_queuing_error_runs_nothing(http: httpx.Client, redis_direct) -> None:
    response = http.post("/multi-exec", json=[["INCR", "n"], ["NOSUCHCOMMAND"]])
    assert response.status_code == 400
    assert response.json()["error"].startswith("EXECABORT")
    assert redis_direct.get("n") is None


def test_multi_exec_reports_runtime_errors_per_command(http: httpx.Client) -> None:
    http.post("/", json=["SET", "text", "x"])
    response = http.post("/multi-exec", json=[["LPUSH", "text", "y"], ["INCR", "n"]])
    assert response.status_code == 200
    assert response.json() == [
        {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        {"result": 1},
    ]


@pytest.mark.parametrize(
    "command", [["MULTI"], ["SUBSCRIBE", "ch"], ["SELECT", "1"], ["WATCH", "k"]]
)
def test_commands_that_would_change_a_pooled_connection_are_refused(
    http: httpx.Client, command
) -> None:
    response = http.post("/", json=command)
    assert response.status_code == 400
    assert http.post("/", json=["PING"]).json() == {"result": "PONG"}


def test_every_response_carries_a_sync_token(http: httpx.Client) -> None:
    first = http.post("/", json=["PING"], headers={"Upstash-Sync-Token": ""})
    second = http.post(
        "/", json=["PING"], headers={"Upstash-Sync-Token": first.headers["upstash-sync-token"]}
    )
    failed = http.post("/", content=b"nope")
    tokens = [r.headers["upstash-sync-token"] for r in (first, second, failed)]
    assert all(tokens)
    assert first.status_code == second.status_code == 200


def test_stats_count_every_request_but_their_own(
    gateway: Gateway, http: httpx.Client, gateway_requests
) -> None:
    before = gateway_requests()
    http.get("/ping")
    http.post("/", content=b"bad json")
    httpx.get(f"{gateway.url}/ping")  # unauthorised: still served
    http.request("DELETE", "/ping")
    assert gateway_requests() == before + 4
    assert gateway_requests() == before + 4


def test_stats_need_the_token_and_issue_no_redis_command(
    gateway: Gateway, http: httpx.Client, billed_commands
) -> None:
    assert httpx.get(f"{gateway.url}/_local/stats").status_code == 401
    assert http.get("/_local/stats").json()["requests"] >= 0
    assert billed_commands() == 0


def test_a_request_runs_exactly_the_commands_it_asks_for(
    http: httpx.Client, billed_commands
) -> None:
    http.post("/", json=["SET", "k", "v"])
    http.get("/get/k")
    http.post("/pipeline", json=[["INCR", "n"], ["INCR", "n"], ["GET", "n"]])
    assert billed_commands() == 5
    http.post("/multi-exec", json=[["INCR", "n"], ["GET", "n"]])
    assert billed_commands() == 5 + 4  # MULTI and EXEC are commands Redis counts too


def test_sequential_keep_alive_requests_do_not_stall(http: httpx.Client) -> None:
    """Nagle plus delayed ACK would make each of these take about 40 ms."""
    started = time.perf_counter()
    for _ in range(100):
        http.post("/", json=["SET", "k", "v"])
    assert time.perf_counter() - started < 2.0
