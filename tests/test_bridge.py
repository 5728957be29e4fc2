"""The WSGI bridge: PEP 3333 conformance, bounded memory both ways, limits, disconnects, threads."""

from __future__ import annotations

import contextvars
import hashlib
import io
import socket
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import urlparse
from wsgiref.validate import validator

import anyio
import httpx
import pytest
from flask import Flask, request

from core.bridge import BODY_BUFFER_BYTES, ClientDisconnected, RequestBodyTooLarge, WSGIBridge
from core.testing import serve_in_thread
from tests.bodies import CountingBody

MiB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bridge(app: Any, *, max_body_bytes: int = 64 * MiB, threads: int = 8) -> WSGIBridge:
    return WSGIBridge(app, max_body_bytes=max_body_bytes, threads=threads)


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def echo_environ(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the environ's string values and the body it read, line by line."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    lines = [f"{k}={v}" for k, v in sorted(environ.items()) if isinstance(v, str)]
    payload = ("\n".join(lines) + f"\nBODY={body.decode('latin-1')}").encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))])
    return [payload]


def parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


@pytest.mark.anyio
async def test_environ_is_pep3333_and_passes_wsgiref_validate() -> None:
    async with asgi_client(bridge(validator(echo_environ))) as client:
        response = await client.post(
            "/a%20b/c?x=1&y=%C3%A9",
            content=b"payload",
            headers=[
                ("X-Multi", "one"),
                ("X-Multi", "two"),
                ("Cookie", "a=1"),
                ("Cookie", "b=2"),
                ("Content-Type", "text/plain"),
            ],
        )
    assert response.status_code == 200, response.text
    environ = parse(response.text)
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/a b/c"
    assert environ["QUERY_STRING"] == "x=1&y=%C3%A9"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["HTTP_X_MULTI"] == "one,two"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["CONTENT_TYPE"] == "text/plain" and environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1" and environ["wsgi.url_scheme"] == "http"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["BODY"] == "payload"


@pytest.mark.anyio
async def test_root_path_becomes_script_name_and_non_ascii_paths_are_latin1_strings() -> None:
    wsgi = bridge(echo_environ)
    sent: list[dict[str, Any]] = []

    messages: Iterator[MutableMapping[str, Any]] = iter([{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> MutableMapping[str, Any]:  # like a server: after the body, wait until the client leaves
        message = next(messages, None)
        if message is None:
            await anyio.sleep_forever()
        return message  # type: ignore[return-value]  # never None: sleep_forever does not return

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "GET",
        "http_version": "1.1",
        "scheme": "https",
        "root_path": "/mlflow",
        "path": "/mlflow/ajax-api/é",
        "query_string": b"",
        "headers": [(b"x_forwarded_for", b"6.6.6.6")],
        "server": ("example.test", 443),
        "client": ("10.0.0.9", 5555),
    }
    await wsgi(scope, receive, send)
    environ = parse(b"".join(m.get("body", b"") for m in sent).decode("latin-1"))
    assert environ["SCRIPT_NAME"] == "/mlflow"
    assert environ["PATH_INFO"] == "/ajax-api/é".encode().decode("latin-1")
    assert environ["wsgi.url_scheme"] == "https" and environ["SERVER_PORT"] == "443"
    assert environ["REMOTE_ADDR"] == "10.0.0.9" and environ["REMOTE_PORT"] == "5555"
    assert "HTTP_X_FORWARDED_FOR" not in environ  # underscore headers are dropped, not folded into dashes


def reading_app(how: str):
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        if how == "read":
            data = stream.read()
        elif how == "pieces":
            parts = []
            while part := stream.read(1000):
                parts.append(part)
            data = b"".join(parts)
        elif how == "lines":
            data = b"".join(stream)
        else:
            data = b"".join(stream.readlines())
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [hashlib.sha256(data).hexdigest().encode(), b" ", str(len(data)).encode()]

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["read", "pieces", "lines", "readlines"])
async def test_body_reads_return_every_byte_in_order(how: str) -> None:
    body = b"".join(b"line %d of the body\n" % i for i in range(20000)) + b"no newline at the end"

    async def chunks() -> Any:  # chunked transfer: no Content-Length
        for start in range(0, len(body), 7777):
            yield body[start : start + 7777]

    app = reading_app(how)
    if how != "read":  # wsgiref.validate insists on read(size); Werkzeug calls read() on terminated input
        app = validator(app)
    async with asgi_client(bridge(app)) as client:
        response = await client.post("/", content=chunks())
    assert response.text == f"{hashlib.sha256(body).hexdigest()} {len(body)}"


def test_large_upload_is_streamed_with_bounded_buffering() -> None:
    """The app sees the body as it arrives; the bridge never holds more than its buffer ahead of the reads."""
    most_buffered = 0

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal most_buffered
        stream, total, digest = environ["wsgi.input"], 0, hashlib.sha256()
        while chunk := stream.read(64 * 1024):
            most_buffered = max(most_buffered, stream.buffered)
            total += len(chunk)
            digest.update(chunk)
            time.sleep(0.0005)  # a handler slower than the network
        start_response("200 OK", [])
        return [f"{total} {digest.hexdigest()}".encode()]

    payload = bytes(range(256)) * (64 * MiB // 256)
    with serve_in_thread(bridge(app, max_body_bytes=128 * MiB)) as base:
        response = httpx.post(base, content=payload, timeout=60)
    assert response.text == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
    assert 0 < most_buffered <= BODY_BUFFER_BYTES + 512 * 1024


@pytest.mark.anyio
async def test_declared_body_over_the_limit_is_refused_before_the_app_runs() -> None:
    calls = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(1)
        start_response("200 OK", [])
        return [b""]

    async with asgi_client(bridge(app, max_body_bytes=1000)) as client:
        response = await client.post("/", content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {
        "detail": "request body is 1001 bytes; the limit is 1000 bytes (PLUGHOST_MAX_BODY_BYTES)"
    }
    assert calls == []


def test_chunked_body_over_the_limit_is_refused_when_it_crosses() -> None:
    seen: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except RequestBodyTooLarge as error:
            seen.append(error)
            raise
        start_response("200 OK", [])
        return [b"read it all"]

    body = CountingBody(64 * MiB)
    with serve_in_thread(bridge(app, max_body_bytes=1 * MiB)) as base:
        try:
            response = httpx.post(base, content=body, timeout=30)
            assert response.status_code == 413
            assert "the limit is 1048576 bytes" in response.json()["detail"]
        except httpx.WriteError:
            pass  # the server may answer and close before the client stops writing
    assert body.sent < 16 * MiB  # refused as the limit was crossed, not after the whole body
    assert seen and isinstance(seen[0], RequestBodyTooLarge)


class Tracked:
    """A response iterable that records whether close() was called."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.closed = threading.Event()
        self.produced = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.produced += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed.set()


def test_write_callable_and_exc_info_and_file_wrapper(tmp_path: Any) -> None:
    data_file = tmp_path / "data.bin"
    data_file.write_bytes(b"0123456789" * 10000)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        if path == "/write":
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"written, ")
            return [b"then yielded"]
        if path == "/exc-info":
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
            try:
                raise ValueError("changed my mind")
            except ValueError:
                start_response(
                    "503 Service Unavailable", [("Content-Type", "text/plain"), ("X-Second", "1")], sys.exc_info()
                )
            return [b"replaced"]
        if path == "/file":
            start_response(
                "200 OK",
                [("Content-Type", "application/octet-stream"), ("Content-Length", str(data_file.stat().st_size))],
            )
            return environ["wsgi.file_wrapper"](open(data_file, "rb"), 4096)
        raise AssertionError(path)

    with serve_in_thread(bridge(validator(app))) as base:
        assert httpx.get(f"{base}/write").text == "written, then yielded"
        replaced = httpx.get(f"{base}/exc-info")
        assert (replaced.status_code, replaced.text, "x-first" in replaced.headers, replaced.headers["x-second"]) == (
            503,
            "replaced",
            False,
            "1",
        )
        assert httpx.get(f"{base}/file").content == data_file.read_bytes()


def test_exc_info_after_headers_were_sent_aborts_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise ValueError("failed mid-stream")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())

    with serve_in_thread(bridge(app)) as base, pytest.raises(httpx.RemoteProtocolError):
        httpx.get(base)


@pytest.mark.anyio
async def test_close_is_called_on_success_and_on_error() -> None:
    ok = Tracked(iter([b"a", b"b"]))

    def failing_chunks() -> Iterator[bytes]:
        yield b"a"
        raise RuntimeError("broken generator")

    broken = Tracked(failing_chunks())

    def app(environ: dict[str, Any], start_response: Any) -> Tracked:
        start_response("200 OK", [])
        return ok if environ["PATH_INFO"] == "/ok" else broken

    async with asgi_client(bridge(app)) as client:
        assert (await client.get("/ok")).text == "ab"
        with pytest.raises(RuntimeError, match="broken generator"):
            await client.get("/broken")
    assert ok.closed.is_set() and broken.closed.is_set()


def test_client_disconnect_mid_response_closes_the_iterable_and_frees_the_thread() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * 65536

    tracked = Tracked(endless())

    def app(environ: dict[str, Any], start_response: Any) -> Tracked:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return tracked

    wsgi = bridge(app)
    with serve_in_thread(wsgi) as base:
        with httpx.stream("GET", base, timeout=10) as response:
            for _ in response.iter_bytes():
                break  # read a little, then hang up
        assert tracked.closed.wait(10), "the iterable was not closed after the client left"
        deadline = time.monotonic() + 10
        while wsgi.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wsgi.running == 0


def test_client_disconnect_mid_request_body_raises_in_the_app_and_frees_the_thread() -> None:
    raised: list[BaseException] = []
    done = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as error:
            raised.append(error)
        finally:
            done.set()
        start_response("200 OK", [])
        return [b""]

    wsgi = bridge(app)
    with serve_in_thread(wsgi) as base:
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"y" * 1000)
            time.sleep(0.2)
        assert done.wait(10)
        deadline = time.monotonic() + 10
        while wsgi.running and time.monotonic() < deadline:
            time.sleep(0.01)
    assert raised and wsgi.running == 0


def test_slow_client_holds_back_a_huge_streamed_response() -> None:
    """A 1 GiB stream to a client that stops reading: the app is held back by the socket, so
    what it has produced beyond what the client read stays within the kernel's socket buffers."""
    tracked = Tracked(iter(lambda: b"z" * 65536, None))  # endless; capped by the check below

    def app(environ: dict[str, Any], start_response: Any) -> Tracked:
        start_response("200 OK", [("Content-Length", str(1024 * MiB))])
        return tracked

    with serve_in_thread(bridge(app)) as base:
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            received = 0
            while received < 4 * MiB:
                received += len(sock.recv(1 << 20))
            time.sleep(1.0)  # stop reading
            ahead = tracked.produced - received
    assert ahead < 16 * MiB, f"the app ran {ahead / MiB:.0f} MiB ahead of a client that stopped reading"


def test_first_chunk_of_a_stream_is_sent_before_the_next_is_produced() -> None:
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: first\n\n"
        release.wait(10)
        yield b"data: second\n\n"

    with serve_in_thread(bridge(app)) as base, httpx.stream("GET", base, timeout=10) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"data: first\n\n"  # arrives while the app is still waiting
        release.set()
        assert b"".join(chunks) == b"data: second\n\n"


def test_a_full_thread_pool_queues_requests_instead_of_failing() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        start_response("200 OK", [])
        return [b"ok"]

    async def burst(base: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = []

            async def one() -> None:
                responses.append((await client.get(base)).status_code)

            async with anyio.create_task_group() as tasks:
                for _ in range(8):
                    tasks.start_soon(one)
            return responses

    with serve_in_thread(bridge(app, threads=2)) as base:
        statuses = anyio.run(burst, base)
    assert statuses == [200] * 8
    assert most == 2


workspace: contextvars.ContextVar[str] = contextvars.ContextVar("workspace", default="unset")


def test_context_set_by_an_asgi_middleware_is_visible_in_flask() -> None:
    flask_app = Flask("ctx")

    @flask_app.post("/whoami")
    def whoami() -> dict[str, Any]:
        return {"workspace": workspace.get(), "body": request.get_data(as_text=True)}

    wsgi = bridge(flask_app)

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        token = workspace.set("team-a")
        try:
            await wsgi(scope, receive, send)
        finally:
            workspace.reset(token)

    with serve_in_thread(middleware) as base:
        assert httpx.post(f"{base}/whoami", content=b"hi").json() == {"workspace": "team-a", "body": "hi"}


def test_head_and_flask_streaming_and_websocket_refusal() -> None:
    flask_app = Flask("misc")

    @flask_app.get("/page")
    def page() -> str:
        return "hello page"

    @flask_app.get("/stream")
    def stream() -> Any:
        return flask_app.response_class((f"{i}\n" for i in range(1000)), mimetype="text/plain")

    with serve_in_thread(bridge(flask_app)) as base:
        head = httpx.head(f"{base}/page")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "10"
        assert httpx.get(f"{base}/stream").text == "".join(f"{i}\n" for i in range(1000))
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 403")


def test_app_error_before_the_response_becomes_a_500() -> None:
    tracked = Tracked(iter([]))

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/early":
            raise RuntimeError("failed before start_response")
        return tracked  # never calls start_response

    from starlette.middleware.errors import ServerErrorMiddleware

    with serve_in_thread(ServerErrorMiddleware(bridge(app))) as base:
        assert httpx.get(f"{base}/early").status_code == 500
        assert httpx.get(f"{base}/never-started").status_code == 500
    assert tracked.closed.is_set()


def test_read_of_zero_and_readline_limits() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        parts = [stream.read(0), stream.readline(3), stream.readline(), stream.read(2), stream.read()]
        start_response("200 OK", [])
        return [repr(parts).encode()]

    with serve_in_thread(bridge(app)) as base:
        assert httpx.post(base, content=b"abcdef\nghij").text == repr([b"", b"abc", b"def\n", b"gh", b"ij"])
    assert io.BytesIO(b"abcdef\nghij").readline(3) == b"abc"  # the same semantics as a file
