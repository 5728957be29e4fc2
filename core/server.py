"""Run the app under uvicorn, with TCP_NODELAY on every accepted socket in every worker mode.

asyncio sets TCP_NODELAY only on sockets whose ``proto`` is ``IPPROTO_TCP``;
uvicorn's own bound socket (``--workers`` > 1, ``--reload``) has ``proto`` 0, so
without this each keep-alive response waited ~40 ms on Nagle's algorithm
(uvicorn issue 3149). The protocol below sets the option itself.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import startup
from .access_log import access_logger
from .factory import create_app
from .response_writes import ResponseWrites
from .settings import CoreSettings

logger = logging.getLogger("plughost")

HEADER_TIMEOUT_SECONDS = 10.0
"""How long a client may take to send a request's line and headers."""


REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class NoDelayHTTPProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools), with TCP_NODELAY set on the accepted socket, and a deadline
    for a request's headers: uvicorn has none, so a client sending them a byte at a time (slowloris)
    held its connection for as long as it liked. A connection whose request line and headers are not
    all in within ``header_timeout_seconds`` of its opening, or of the request's first byte, gets
    408 and is closed. Its access log lines are written by :func:`core.access_log.access_logger`, and a
    sized response's head goes out with its body (:mod:`core.response_writes`: told by the protocol when
    the request's body is all in, it refers to neither, so a request leaves no reference cycle behind).

    The deadline is one timer per connection, not one per request: a request only notes when its head
    began, and the timer, when it fires, closes the connection or waits for the deadline it then sees."""

    header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_logger = access_logger(self.access_logger)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
        self._head_began: float | None = self.loop.time()
        self._header_deadline: asyncio.TimerHandle | None = self.loop.call_at(
            self._head_began + self.header_timeout_seconds, self._check_header_deadline
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_began is None:
            self._head_began = self.loop.time()

    def on_headers_complete(self) -> None:
        self._head_began = None
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:  # upgraded: the connection is the WebSocket's now
            self._stop_header_deadline()
        elif not cycle.response_started:
            cycle.transport = ResponseWrites(self.transport, self.scope["method"])

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and isinstance(cycle.transport, ResponseWrites):
            cycle.transport.request_complete = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _check_header_deadline(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        began = self._head_began
        if began is not None and now >= began + self.header_timeout_seconds:
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()
            return
        due = (began if began is not None else now) + self.header_timeout_seconds
        self._header_deadline = self.loop.call_at(due, self._check_header_deadline)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


WORKER_HEALTHCHECK_SECONDS = 60
"""How long uvicorn's supervisor waits for a worker's answer to its health ping before killing it as hung.
Its default, 5 s, kills workers still importing the app on a busy machine, again and again: the server
never comes up."""


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the ``plughost`` loggers printed as uvicorn prints its own
    (``INFO:     ...``) at ``level``: the start-up lines (console URL, OTLP addresses) and the plugins'
    messages. Applied in every worker process."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["plughost"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def serve(settings: CoreSettings, *, reload: bool = False) -> None:
    """Build the app once here, so a bad configuration stops with its message, then run uvicorn.

    With one worker and no reload the app built here is served; otherwise each
    uvicorn worker builds its own from the same ``PLUGHOST_*`` environment.
    """
    app = create_app(settings)
    if not is_loopback(settings.host):
        logger.warning("listening on %s, beyond this machine, as asked (--host)", settings.host)
    common = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        loop=settings.loop,
        http=NoDelayHTTPProtocol,
        lifespan="on",
    )
    if settings.workers == 1 and not reload:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        startup.resume_collector()  # this process only supervises: the workers start apps of their own
        uvicorn.run(
            "core.factory:create_app",
            factory=True,
            workers=settings.workers,
            reload=reload,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **common,  # type: ignore[arg-type]
        )
