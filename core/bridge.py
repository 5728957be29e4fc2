"""Serve a WSGI (PEP 3333) application from ASGI, with bounded memory both ways.

- Request body: streamed into ``wsgi.input`` as it arrives, through a bounded
  buffer, so a handler that reads the input in pieces never holds it all and a
  handler that reads it whole pays O(n). The body size is capped: a declared
  ``Content-Length`` over the cap is refused with 413 before anything is read,
  a chunked body as soon as it crosses the cap.
- Response: every chunk the app yields is sent before the next is asked for,
  and ``send`` waits for the transport to drain, so a slow client holds back the
  app instead of growing server memory. A response whose first chunk completes
  its ``Content-Length`` (the common case) costs one thread hop in all.
- The app runs in the bridge's own thread pool (``threads`` at once, separate
  from anyio's); a full pool queues requests. ContextVars set by ASGI
  middlewares are visible in the app.
- On client disconnect the app's iterable stops being read and is closed.

Runs on asyncio (as uvicorn does).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any
from wsgiref.util import FileWrapper

from starlette.types import Message, Receive, Scope, Send

from .asgi import send_json_error
from .limits import declared_length, too_large_detail

logger = logging.getLogger("plughost.bridge")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

BODY_BUFFER_BYTES = 1024 * 1024
"""Request bytes held ahead of the WSGI app's reads before the socket is paused."""


class RequestBodyTooLarge(OSError):
    """Raised from ``wsgi.input`` reads when the body crossed the bridge's limit."""


class ClientDisconnected(OSError):
    """Raised from ``wsgi.input`` reads when the client went away mid-body."""


class RequestBody:
    """``wsgi.input``: filled from the event loop, read from the WSGI thread.

    The loop side waits (without blocking the loop) while ``BODY_BUFFER_BYTES``
    are unread. The thread side blocks until the bytes it asked for (or the end
    of the body) are there; it is woken once for them, not once per network
    chunk, and the loop side is woken once the buffer is half drained.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of the first chunk already read
        self._buffered = 0
        self._wanted = 0  # bytes the reader is blocked waiting for; 0 when it is not waiting
        self._ended = False
        self._error: OSError | None = None
        self._ready = threading.Condition(threading.Lock())
        self._space = asyncio.Event()
        self._space.set()
        self._paused = False  # the loop side waits for space and no wake-up is scheduled yet

    @property
    def buffered(self) -> int:
        """Bytes received from the client and not yet read by the app."""
        return self._buffered

    # -- event-loop side -------------------------------------------------
    async def feed(self, chunk: bytes) -> None:
        await self._space.wait()
        with self._ready:
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            if self._buffered >= BODY_BUFFER_BYTES:
                self._space.clear()
                self._paused = True
            if self._wanted and self._buffered >= self._wanted:
                self._ready.notify()

    def end(self, error: OSError | None = None) -> None:
        with self._ready:
            self._ended = True
            self._error = self._error or error
            self._ready.notify_all()

    # -- WSGI-thread side ------------------------------------------------
    def _take(self, limit: int) -> bytes:
        """Take up to ``limit`` bytes of the first chunk (the chunk itself when it fits whole);
        the caller holds the lock."""
        first, start = self._chunks[0], self._offset
        end = min(len(first), start + limit)
        chunk = first if start == 0 and end == len(first) else first[start:end]
        if end == len(first):
            self._chunks.popleft()
            self._offset = 0
        else:
            self._offset = end
        self._buffered -= len(chunk)
        if self._paused and self._buffered <= BODY_BUFFER_BYTES // 2:
            self._paused = False
            self._loop.call_soon_threadsafe(self._space.set)
        return chunk

    def _wait(self, wanted: int) -> bool:
        """Block until ``wanted`` bytes (at most a buffer's worth) are buffered or the body ended;
        True when there is anything to read. The caller holds the lock."""
        wanted = min(wanted, BODY_BUFFER_BYTES)
        while self._buffered < wanted and not self._ended:
            self._wanted = wanted
            self._ready.wait()
        self._wanted = 0
        if self._error is not None:
            raise self._error
        return bool(self._chunks)

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (fewer only at end of body), or everything when ``size`` is negative."""
        wanted = sys.maxsize if size is None or size < 0 else size
        parts: list[bytes] = []
        with self._ready:
            while wanted > 0 and self._wait(wanted):
                part = self._take(wanted)
                parts.append(part)
                wanted -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        wanted = sys.maxsize if size is None or size < 0 else size
        parts: list[bytes] = []
        with self._ready:
            while wanted > 0 and self._wait(1):
                newline = self._chunks[0].find(b"\n", self._offset, self._offset + wanted)
                part = self._take(wanted if newline < 0 else newline + 1 - self._offset)
                parts.append(part)
                wanted -= len(part)
                if newline >= 0:
                    break
        return b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class WSGIBridge:
    """An ASGI app that serves ``app``, a WSGI application, from a pool of ``threads`` threads.

    It enforces ``max_body_bytes`` itself, so it can run alone; in the app, the core's
    :class:`~core.limits.RequestLimits` leaves its body alone (see ``BridgeMount``).
    """

    def __init__(self, app: WSGIApp, *, max_body_bytes: int, threads: int, multiprocess: bool = False) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.threads = threads
        self.multiprocess = multiprocess
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plughost-wsgi")
        self.running = 0
        """WSGI calls in progress (running or queued for a thread)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000, "reason": "the WSGI app does not serve websockets"})
            return
        if scope["type"] != "http":
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await send_json_error(send, 413, self.too_large_message(declared), close=True)
            return
        self.running += 1
        try:
            await _Exchange(self, scope, receive, send).run()
        finally:
            self.running -= 1

    def too_large_message(self, size: int | None) -> str:
        return too_large_detail(self.max_body_bytes, "PLUGHOST_MAX_BODY_BYTES", size)


class _Exchange:
    """One request and its response: the loop side feeds the body in, watches for a
    disconnect and sends messages out; the thread side runs the WSGI app."""

    def __init__(self, bridge: WSGIBridge, scope: Scope, receive: Receive, send: Send) -> None:
        self.bridge = bridge
        self.scope = scope
        self.receive = receive
        self.send = send
        self.loop = asyncio.get_running_loop()
        self.body = RequestBody(self.loop)
        self.received = 0
        self.listener: asyncio.Task[None] | None = None
        self.disconnected = False
        self.refused = False  # the bridge answered (413) in the app's place
        self.response_started = False
        # thread-side state
        self.start_message: Message | None = None
        self.headers_sent = False
        self.content_length: int | None = None
        self.body_bytes = 0
        self.pending: list[Message] = []

    async def run(self) -> None:
        if not await self._take_request_message():  # a body that fits one message needs no listener
            self.listener = self.loop.create_task(self._pump_request())
        call = contextvars.copy_context().run  # ContextVars set by middlewares, visible in the app
        failure: Exception | None = None
        try:
            final = await self.loop.run_in_executor(self.bridge.executor, call, self._run_app)
        except asyncio.CancelledError:
            self.disconnected = True  # the thread stops at its next chunk
            raise
        except Exception as exc:
            failure, final = exc, []
        finally:
            if self.listener is not None:
                self.listener.cancel()
        if failure is not None and not (self.disconnected or self.refused):
            raise failure
        await self._deliver(final)

    # -- event-loop side -------------------------------------------------
    async def _take_request_message(self) -> bool:
        """Feed one request message to the body; True once the body is complete (or refused)."""
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            self.body.end(ClientDisconnected("the client disconnected before the body was complete"))
            return True
        chunk = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self.bridge.max_body_bytes:
            await self._refuse_too_large()
            return True
        if chunk:
            await self.body.feed(chunk)
        if message.get("more_body", False):
            return False
        self.body.end()
        return True

    async def _pump_request(self) -> None:
        while not await self._take_request_message():
            pass
        if not (self.disconnected or self.refused):
            await self._listen_for_disconnect()

    async def _listen_for_disconnect(self) -> None:
        if (await self.receive())["type"] == "http.disconnect":  # after the body, only this can come
            self.disconnected = True

    async def _refuse_too_large(self) -> None:
        self.body.end(RequestBodyTooLarge(self.bridge.too_large_message(None)))
        if not self.response_started:
            self.refused = True
            await asyncio.shield(send_json_error(self.send, 413, self.bridge.too_large_message(None), close=True))

    async def _deliver(self, messages: list[Message]) -> None:
        if self.refused or self.disconnected:
            return
        for message in messages:
            self.response_started = True
            await self.send(message)

    async def _stream(self, messages: list[Message]) -> None:
        """Send part of a streamed response, and from now on notice if the client leaves."""
        if self.listener is None:
            self.listener = self.loop.create_task(self._listen_for_disconnect())
        await self._deliver(messages)

    # -- WSGI-thread side ------------------------------------------------
    def _run_app(self) -> list[Message]:
        """Run the app; return the messages left to send once the thread is done."""
        environ = build_environ(self.scope, self.body, multiprocess=self.bridge.multiprocess)
        iterable = self.bridge.app(environ, self._start_response)
        try:
            for chunk in iterable:
                if self.disconnected or self.refused:
                    return []
                self._write(chunk)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        if self.start_message is None:
            raise RuntimeError("the WSGI app returned without calling start_response")
        final: Message = {"type": "http.response.body", "body": b"", "more_body": False}
        if self.pending:
            final = {**self.pending.pop(), "more_body": False}
        return self._take_unsent() + [final]

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.start_message is not None:
            raise RuntimeError("start_response was called a second time without exc_info")
        self.content_length = None
        encoded = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-length":
                self.content_length = int(value)
            encoded.append((lowered.encode("latin-1"), value.encode("latin-1")))
        self.start_message = {"type": "http.response.start", "status": int(status[:3]), "headers": encoded}
        return self._write

    def _write(self, chunk: bytes) -> None:
        """Queue ``chunk``; send it at once (waiting for the client) unless it completes a declared
        Content-Length, in which case it goes out with the final message, saving a thread hop."""
        if self.start_message is None:
            raise RuntimeError("the WSGI app wrote body bytes before calling start_response")
        if not chunk:
            return
        self.body_bytes += len(chunk)
        self.pending.append({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.content_length is None or self.body_bytes < self.content_length:
            asyncio.run_coroutine_threadsafe(self._stream(self._take_unsent()), self.loop).result()

    def _take_unsent(self) -> list[Message]:
        messages = self.pending
        if not self.headers_sent:
            assert self.start_message is not None
            messages = [self.start_message, *messages]
            self.headers_sent = True
        self.pending = []
        return messages


def build_environ(scope: Scope, body: RequestBody, *, multiprocess: bool = False) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP scope."""
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path_info = scope["path"].encode("utf-8").decode("latin-1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    server_name, server_port = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if "_" in name:  # "x_forwarded_for" would pose as "x-forwarded-for" (header smuggling)
            continue
        if name == "content-type":
            key = "CONTENT_TYPE"
        elif name == "content-length":
            key = "CONTENT_LENGTH"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ
