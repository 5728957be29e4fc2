"""Body limits on native routes (global, JSON, per route), the JSON nesting limit, and the 405 Allow header."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel

from core import RouterContribution, body_limit, hookimpl
from core.jsonbody import MAX_DEPTH, JSONBodyError, JSONTooDeep, check_depth, loads
from core.testing import client_for, serve_in_thread
from tests.bodies import CountingBody

MiB = 1024 * 1024
JSON = {"content-type": "application/json"}


class Item(BaseModel):
    name: str
    payload: Any = None


def limits_plugin(received: list[int]) -> object:
    """Routes that report how many body bytes they were given; ``received`` collects them."""
    router = APIRouter()

    @router.post("/api/raw")
    async def raw(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            received.append(len(chunk))
        return {"size": size}

    @router.post("/api/items")
    async def items(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @router.post("/api/bulk", openapi_extra=body_limit(8 * MiB, "PLUGHOST_LIMITS_BULK_BYTES"))
    async def bulk(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @router.post("/api/decode")
    async def decode(request: Request) -> dict[str, str]:
        try:
            return {"kind": type(loads(await request.body())).__name__}
        except JSONBodyError as error:
            return {"error": str(error)}

    class Plugin:
        PLUGHOST_NAME = "limits"

        @hookimpl
        def plughost_routers(self, host):
            return RouterContribution("limits", router)

    return Plugin()


@pytest.fixture
def received() -> list[int]:
    return []


@pytest.fixture
def plughost_app(make_app, received: list[int]):
    return make_app([limits_plugin(received)], {"max_body_bytes": 4 * MiB})


def test_a_declared_body_over_the_limit_is_413_before_the_route_reads_it(client, received: list[int]) -> None:
    response = client.post("/api/raw", content=b"x" * (4 * MiB + 1))
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body is {4 * MiB + 1} bytes; the limit is {4 * MiB} bytes (PLUGHOST_MAX_BODY_BYTES)"
    }
    assert response.headers["connection"] == "close"
    assert received == []
    assert client.post("/api/raw", content=b"x" * (4 * MiB)).json() == {"size": 4 * MiB}


def test_a_chunked_body_is_refused_as_soon_as_it_crosses_the_limit(live_server: str, received: list[int]) -> None:
    body = CountingBody(256 * MiB)
    try:
        response = httpx.post(f"{live_server}/api/raw", content=body, timeout=30)
        assert response.status_code == 413
        assert (
            response.json()["detail"]
            == f"request body is larger than allowed; the limit is {4 * MiB} bytes (PLUGHOST_MAX_BODY_BYTES)"
        )
    except httpx.WriteError:
        pass  # the server may answer and close before the client stops writing
    assert sum(received) <= 4 * MiB
    assert body.sent < 64 * MiB  # refused as the limit was crossed, not after the whole body


def test_json_bodies_have_the_lower_json_limit(client) -> None:
    big = json.dumps({"name": "x", "payload": "y" * (2 * MiB)})
    response = client.post("/api/items", content=big, headers=JSON)
    assert response.status_code == 413
    assert response.json()["detail"].endswith(f"the limit is {MiB} bytes (PLUGHOST_MAX_JSON_BODY_BYTES)")
    assert client.post("/api/raw", content=big, headers={"content-type": "text/plain"}).json() == {"size": len(big)}
    assert client.post("/api/items", json={"name": "small"}).json() == {"name": "small"}


def test_a_route_sets_its_own_limit_and_names_its_setting(client) -> None:
    six = json.dumps({"payload": "y" * (6 * MiB)})  # over both core limits, under the route's own
    assert client.post("/api/bulk", content=six, headers=JSON).json() == {"size": len(six)}
    response = client.post("/api/bulk", content=b"x" * (8 * MiB + 1))
    assert response.status_code == 413
    assert (
        response.json()["detail"]
        == f"request body is {8 * MiB + 1} bytes; the limit is {8 * MiB} bytes (PLUGHOST_LIMITS_BULK_BYTES)"
    )
    operation = client.get("/openapi.json").json()["paths"]["/api/bulk"]["post"]
    assert operation["x-plughost-max-body-bytes"] == 8 * MiB and "413" in operation["responses"]


@pytest.mark.parametrize(("plugin", "path"), [("jobs", "/api/jobs"), ("gateway", "/gateway/v1/chat/completions")])
def test_a_huge_json_post_to_a_plugin_route_is_refused_unread(make_app, plugin: str, path: str) -> None:
    """The issue's case: 100 MiB of JSON to /api/jobs or the gateway was read whole and parsed on the loop."""
    body = CountingBody(100 * MiB, chunk=MiB, fill=b" ")
    app = make_app([plugin], {"jobs": {"workers": 0}} if plugin == "jobs" else {})
    with serve_in_thread(app) as base:
        try:
            response = httpx.post(
                f"{base}{path}", content=body, headers={**JSON, "content-length": str(100 * MiB)}, timeout=30
            )
            assert response.status_code == 413
            assert "PLUGHOST_MAX_JSON_BODY_BYTES" in response.json()["detail"]
        except httpx.WriteError:
            pass
    assert body.sent < 100 * MiB


@pytest.mark.parametrize("path", ["/api/items", "/api/raw", "/api/decode"])
def test_deeply_nested_json_is_400_on_every_kind_of_route(client, path: str) -> None:
    for body in (b"[" * 100_000, b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)):
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 400, response.text
        assert response.json() == {
            "detail": f"the JSON body nests objects or arrays deeper than {MAX_DEPTH} levels; flatten it"
        }


def test_a_plugin_parsing_json_itself_gets_the_depth_check_from_core_jsonbody(client) -> None:
    deep = b"[" * 100_000
    answer = client.post("/api/decode", content=deep, headers={"content-type": "text/plain"}).json()
    assert answer == {"error": f"the JSON body nests objects or arrays deeper than {MAX_DEPTH} levels; flatten it"}
    assert client.post("/api/decode", content=b"[1, {}]", headers={"content-type": "text/plain"}).json() == {
        "kind": "list"
    }


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("document", "too_deep"),
    [
        (nested(MAX_DEPTH), False),
        (nested(MAX_DEPTH + 1), True),
        (b"[" * 100_000, True),  # unbalanced: the unmatched openers count
        (b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH, False),
        (b"[1," * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), True),
        (json.dumps({"s": "[" * 1000, "t": '\\"[[[' * 100}).encode(), False),  # brackets inside strings
        (json.dumps(["\\", "[" * 100]).encode(), False),  # an escaped backslash ends before the quote
        ((nested(MAX_DEPTH) + b",") * 500, False),
        (b"[" + (nested(MAX_DEPTH) + b",") * 50 + b"[]]", True),
    ],
)
def test_check_depth_counts_only_brackets_outside_strings(document: bytes, too_deep: bool) -> None:
    if too_deep:
        with pytest.raises(JSONTooDeep):
            check_depth(document)
    else:
        check_depth(document)


def test_loads_reports_bad_json_as_a_value_error_never_a_recursion_error() -> None:
    with pytest.raises(JSONBodyError, match="not valid JSON: Expecting value at line 1 column 4"):
        loads(b"[1,")
    with pytest.raises(JSONBodyError, match="not UTF-8"):
        loads(b'"\xff"')
    with pytest.raises(JSONTooDeep):
        loads("[" * 5000 + "]" * 5000, max_depth=10_000)  # past the interpreter's own limit
    assert loads(b'{"a": [1, 2]}') == {"a": [1, 2]}


def test_a_405_allows_every_method_of_every_route_at_the_path(make_app) -> None:
    reads, writes = APIRouter(), APIRouter()

    @reads.get("/api/things/{name}")
    async def get_thing(name: str) -> str:
        return name

    @writes.put("/api/things/{name}")
    async def put_thing(name: str) -> str:
        return name

    @writes.delete("/api/things/{name}")
    async def delete_thing(name: str) -> None:
        return None

    def plugin(name: str, router: APIRouter) -> object:
        class Plugin:
            PLUGHOST_NAME = name

            @hookimpl
            def plughost_routers(self, host):
                return RouterContribution(name, router)

        return Plugin()

    with client_for(make_app([plugin("reads", reads), plugin("writes", writes)])) as client:
        response = client.post("/api/things/a")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, PUT, DELETE"
        assert response.json() == {"detail": "Method Not Allowed"}


def test_the_issues_deep_json_cases_on_the_otel_and_gateway_routes_are_400(make_app) -> None:
    """``[`` x 100,000 got 500 (RecursionError) on /v1/traces and the gateway's JSON routes,
    including where the core cannot see JSON: gzip-encoded, or sent as text/plain."""
    deep = b"[" * 100_000
    with client_for(make_app(["otel", "gateway"]), base_url="http://localhost") as client:
        for headers in (JSON, {**JSON, "content-encoding": "gzip"}):
            body = gzip.compress(deep) if "content-encoding" in headers else deep
            response = client.post("/v1/traces", content=body, headers=headers)
            assert response.status_code == 400, response.text
            assert "deeper than 64 levels" in response.text
        for path in (
            "/gateway/v1/chat/completions",
            "/gateway/v1/embeddings",
            "/gateway/anthropic/v1/messages",
            "/gateway/e/invocations",
        ):
            response = client.post(path, content=deep, headers={"content-type": "text/plain"})
            assert response.status_code == 400, (path, response.text)
            assert "deeper than 64 levels" in response.text


def test_otlp_json_keeps_the_otel_limit_over_the_core_json_limit(make_app) -> None:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "big",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [{"key": "blob", "value": {"stringValue": "x" * (3 * MiB)}}],
    }
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    with client_for(make_app(["otel"]), base_url="http://localhost") as client:
        assert client.post("/v1/traces", content=body, headers=JSON).status_code == 200
        over = client.post("/v1/traces", content=b"{" + b" " * (8 * MiB), headers=JSON)
        assert over.status_code == 413 and "PLUGHOST_OTEL_MAX_BODY_BYTES" in over.text


def test_a_forged_deeply_nested_jobs_page_token_is_400_not_500(make_app) -> None:
    token = base64.urlsafe_b64encode(b"[" * 5000).decode()
    with client_for(make_app(["jobs"], {"jobs": {"workers": 0}}), base_url="http://localhost") as client:
        response = client.get("/api/jobs", params={"page_token": token})
        assert response.status_code == 400
        assert "invalid page_token" in response.json()["detail"]
