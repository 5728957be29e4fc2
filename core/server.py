"""Run the app under uvicorn, with TCP_NODELAY on every accepted socket in every worker mode.

asyncio sets TCP_NODELAY only on sockets whose ``proto`` is ``IPPROTO_TCP``;
uvicorn's own bound socket (``--workers`` > 1, ``--reload``) has ``proto`` 0, so
without this each keep-alive response waited ~40 ms on Nagle's algorithm
(uvicorn issue 3149). The protocol below sets the option itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .factory import create_app
from .settings import CoreSettings

logger = logging.getLogger("plughost")


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol, with TCP_NODELAY set on the accepted socket."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        set_nodelay(transport)
        super().connection_made(transport)


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
        loop=settings.loop,
        http=NoDelayHTTPProtocol,
        lifespan="on",
    )
    if settings.workers == 1 and not reload:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
    else:
        uvicorn.run(
            "core.factory:create_app",
            factory=True,
            workers=settings.workers,
            reload=reload,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **common,  # type: ignore[arg-type]
        )
