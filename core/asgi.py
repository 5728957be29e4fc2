"""Small helpers for pure-ASGI code: the bridge, and plugin middlewares that answer a request themselves."""

from __future__ import annotations

import json

from starlette.types import Send


async def send_json_error(send: Send, status: int, detail: str, *, close: bool = False) -> None:
    """Send ``{"detail": ...}`` with ``status``; ``close`` ends the connection (so an unread body is not read on)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
