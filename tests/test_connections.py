"""Every error keeps a keep-alive connection honest: after a 4xx or 5xx the same connection serves the
next request, or the answer said ``Connection: close`` (httpx over a real uvicorn server)."""

from __future__ import annotations

import gc
import socket
import time
from typing import Any

import httpx
from fastapi import APIRouter
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from core.server import NoDelayHTTPProtocol
from core.testing import serve_in_thread

from .test_factory import router_plugin


def boom_router() -> APIRouter:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @router.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    return router


def send(client: httpx.Client, method: str, path: str, **options: Any) -> tuple[httpx.Response, Any]:
    response = client.request(method, path, **options)
    return response, response.extensions["network_stream"]  # one object per connection


def test_after_any_error_the_connection_serves_the_next_request_or_said_it_closes(make_app: Any) -> None:
    errors: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/boom", {}),  # 500: a bug in a route
        ("GET", "/api/nowhere/at/all", {}),  # 404 (the console's)
        ("PUT", "/echo", {}),  # 405
        ("POST", "/echo", {"content": b"{not json", "headers": {"content-type": "application/json"}}),  # 400
        ("POST", "/echo", {"json": {"a": "not a number"}}),  # 422
        ("POST", "/echo", {"content": b"[" * 100, "headers": {"content-type": "application/json"}}),  # 400, too deep
        ("POST", "/echo", {"content": b"x" * 3_000_000, "headers": {"content-type": "application/json"}}),  # 413
    ]
    app = make_app([router_plugin("boom", boom_router())])
    with serve_in_thread(app) as base, httpx.Client(base_url=base, limits=httpx.Limits(max_connections=1)) as client:
        for method, path, options in errors:
            failed, connection = send(client, method, path, **options)
            assert failed.status_code >= 400, (method, path)
            following, next_connection = send(client, "GET", "/health")
            assert following.status_code == 200
            said_close = failed.headers.get("connection", "").lower() == "close"
            assert said_close or next_connection is connection, (method, path, failed.status_code, failed.headers)
            if failed.status_code == 500:
                assert said_close and failed.json() == {"detail": "internal server error"}


def test_a_served_request_leaves_no_reference_cycle(make_app: Any) -> None:
    """Each request's response cycle (with its scope, exit stacks and answer) is freed when it ends. A cycle
    through it waited for the cyclic GC: while a big request held full collections off, the garbage of the
    requests served meanwhile piled up, and the first collection after it walked it all on the event loop
    (60-180 ms after 17 s of ``/health`` polls)."""
    app = make_app([router_plugin("boom", boom_router())])
    with serve_in_thread(app) as base, httpx.Client(base_url=base) as client:
        client.get("/health")
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                assert client.get("/health").status_code == 200
                assert client.post("/echo", json={"a": 1}).status_code == 200
                assert client.head("/version").status_code == 200
            gc.collect()
            left = [item for item in gc.garbage if isinstance(item, RequestResponseCycle)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert left == []


class AnswerFirst:
    """An ASGI endpoint that sends a sized answer's head before it reads the request's body."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.body", "body": b"ok"})


def test_answers_without_a_body_to_follow_are_not_held(make_app: Any) -> None:
    """A sized answer's head waits for its body (``core.response_writes``): a HEAD's must still go out, and so
    must one sent before the request's body has come (a client that sent ``Expect: 100-continue`` gets no
    ``100`` once the answer has begun, and waits for the head before it sends its body)."""
    router = APIRouter()
    router.routes.append(Route("/early", AnswerFirst(), methods=["POST"]))  # a plain ASGI endpoint
    app = make_app([router_plugin("boom", boom_router()), router_plugin("early", router)])
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        head, _ = send(client, "HEAD", "/version")
        assert head.status_code == 200 and int(head.headers["content-length"]) > 0 and head.content == b""
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            raw.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            answer = raw.recv(4096)  # held, the head never comes: the client waits out the 30 s and fails here
            assert answer.startswith(b"HTTP/1.1 200"), answer
            raw.sendall(b"hello")
            while not answer.endswith(b"ok"):
                answer += raw.recv(4096)


def slow_client_answer(host: str, port: int, first_bytes: bytes, trickle: bytes) -> bytes:
    """What the server answers a client that sends ``first_bytes``, then ``trickle`` every 0.3 s, and never
    the blank line that ends the headers (given up after 30 s)."""
    answer = b""
    with socket.create_connection((host, port), timeout=0.3) as client:
        client.sendall(first_bytes)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                client.sendall(trickle)
                chunk = client.recv(1024)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_client_slow_to_send_its_headers_gets_408_and_is_closed(make_app: Any, monkeypatch: Any) -> None:
    """slowloris: a byte of headers now and then kept a connection open as long as the client liked."""
    monkeypatch.setattr(NoDelayHTTPProtocol, "header_timeout_seconds", 1.0)
    with serve_in_thread(make_app([])) as base:
        host, port = base.removeprefix("http://").split(":")
        silent = slow_client_answer(host, int(port), b"", b"")
        assert silent.startswith(b"HTTP/1.1 408"), silent
        trickling = slow_client_answer(
            host, int(port), b"GET /health HTTP/1.1\r\nHost: localhost\r\n", b"X-Slow: 1\r\n"
        )
        assert trickling.startswith(b"HTTP/1.1 408"), trickling
        assert httpx.get(f"{base}/health").status_code == 200  # a client that sends its request is served
