"""One response's writes to its connection, with the head of a sized response sent with its body.

uvicorn writes a response's status line and headers, then its body, as two writes: two ``send``
calls, two TCP segments, for every small answer (``/health``, JSON). A response with a
``Content-Length`` and a body to come holds its head here until its body's first write, and both
go out in one ``send``. Everything else passes straight through: a chunked response (a stream:
its head goes out at once, as each chunk does), an answer to ``HEAD`` (no body follows), an
interim ``100 Continue``, a head sent before the request's body has all come (the app may read it
before answering, and a client that sent ``Expect: 100-continue`` waits for that head), and a large
body (joining it to the head would copy it). Closing sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

SIZED = b"\r\ncontent-length:"
"""In a head uvicorn wrote (it lowers header names): the response has a known length."""
INTERIM = b"HTTP/1.1 1"
JOINED_BODY_BYTES = 64 * 1024
"""A first body write up to this size goes out with the held head; a larger one is written after it."""


class ResponseWrites(asyncio.Transport):
    """The connection's transport as one request's response cycle sees it (``write``, ``close``,
    ``is_closing``: what uvicorn's cycle uses)."""

    __slots__ = ("transport", "head_to_come", "held", "request_complete")

    def __init__(self, transport: asyncio.Transport, method: str) -> None:
        self.transport = transport
        self.head_to_come = method != "HEAD"
        """Whether the next final head may be held (a HEAD's answer has no body to wait for)."""
        self.held: bytes | None = None
        self.request_complete = False
        """Whether the request's body has all been received (only then is a head held); the protocol sets it."""

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        held = self.held
        if held is not None:
            self.held = None
            if len(data) <= JOINED_BODY_BYTES:
                self.transport.write(held + data)
            else:
                self.transport.write(held)
                self.transport.write(data)
        elif self.head_to_come and data[: len(INTERIM)] != INTERIM:
            self.head_to_come = False
            if SIZED in data and self.request_complete:
                self.held = bytes(data)
            else:
                self.transport.write(data)
        else:
            self.transport.write(data)

    def close(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self.transport.write(held)
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)
