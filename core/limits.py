"""Request body limits for every native route, and the JSON nesting limit.

:class:`RequestLimits` is a pure ASGI layer inside the plugin middlewares. It wraps
``receive``; nothing happens until the route asks for its body, so a request
without one costs a single small object. On the first read (routing is done by
then) it picks the route's limit:

1. the route's own limit, declared with :func:`body_limit` in its ``openapi_extra``
   (``@router.post("/v1/traces", openapi_extra=body_limit(8 * MiB, "PLUGHOST_OTEL_MAX_BODY_BYTES"))``),
   which wins and is published in the OpenAPI schema;
2. ``PLUGHOST_MAX_JSON_BODY_BYTES`` for a JSON body (``application/json``,
   ``*+json``), which FastAPI and plugins parse on the event loop;
3. ``PLUGHOST_MAX_BODY_BYTES`` for anything else.

A declared ``Content-Length`` over the limit is refused (413) before a byte is
read; a chunked body as soon as it crosses the limit. An uncompressed JSON body is
checked for nesting depth (:mod:`core.jsonbody`) as its last chunk arrives, before
anything parses it: 400, never a ``RecursionError``. A route with its own limit
reads and parses its own body (and answers in its own error format, as OTLP does),
so it parses with :func:`core.jsonbody.loads` and is not depth-checked here. Refusals are raised as
``HTTPException`` from ``receive``, which FastAPI's body parsing re-raises as they
are, so the route's exception handling answers them as JSON.

The WSGI bridge enforces ``PLUGHOST_MAX_BODY_BYTES`` itself (it can run alone), so
a route marked ``limits_own_body`` is passed through.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bulk import run_bulk
from .jsonbody import MAX_DEPTH, JSONTooDeep, check_depth

MAX_BODY_BYTES = "x-plughost-max-body-bytes"
MAX_BODY_SETTING = "x-plughost-max-body-setting"
"""The ``openapi_extra`` keys :func:`body_limit` sets."""
ROUTE_LIMIT = "this route's own limit"
"""How a 413 names a route's own limit that names no setting."""

CHECK_IN_THREAD_BYTES = 64 * 1024
"""JSON bodies from this size are depth-checked in a bulk thread (the check releases the GIL between passes)."""


def body_limit(max_bytes: int, setting: str | None = None) -> dict[str, Any]:
    """A route's own body limit, for its ``openapi_extra``; ``setting`` names what sets it in 413 answers.

    Example::

        @router.post("/v1/traces", openapi_extra=body_limit(settings.max_body_bytes, "PLUGHOST_OTEL_MAX_BODY_BYTES"))
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"a body limit is a number of bytes >= 0, not {max_bytes!r}")
    return {MAX_BODY_BYTES: max_bytes, MAX_BODY_SETTING: setting or ROUTE_LIMIT}


class BodyTooLarge(HTTPException):
    """413: the request body is over the route's limit; the connection is closed after the answer."""

    def __init__(self, limit: int, setting: str, size: int | None = None) -> None:
        super().__init__(413, too_large_detail(limit, setting, size), headers={"connection": "close"})


def too_large_detail(limit: int, setting: str, size: int | None = None) -> str:
    """The 413 message, shared with the WSGI bridge: the size when known, the limit and what sets it."""
    seen = f"is {size} bytes" if size is not None else "is larger than allowed"
    return f"request body {seen}; the limit is {limit} bytes ({setting})"


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or ``None`` when absent or not a number."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def is_plain_json(scope: Scope) -> bool:
    """A JSON media type and no ``Content-Encoding`` (a compressed body is checked once inflated)."""
    content_type = b""
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
        if lowered == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
    return content_type == b"application/json" or (
        content_type.startswith(b"application/") and content_type.endswith(b"+json")
    )


class RequestLimits:
    """The ASGI layer described in the module docstring."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_json_body_bytes: int, max_json_depth: int = MAX_DEPTH
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_body_bytes = max_json_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, _LimitedBody(self, scope, receive).receive, send)


class _LimitedBody:
    """One request's ``receive``, counting its body against the limit chosen on the first read."""

    __slots__ = ("limits", "scope", "_receive", "limit", "setting", "received", "json_chunks", "passthrough")

    def __init__(self, limits: RequestLimits, scope: Scope, receive: Receive) -> None:
        self.limits = limits
        self.scope = scope
        self._receive = receive
        self.limit = -1  # chosen on the first read
        self.setting = ""
        self.received = 0
        self.json_chunks: list[bytes] | None = None
        self.passthrough = False

    async def receive(self) -> Message:
        if self.limit < 0:
            self._choose_limit()
        if self.passthrough:
            return await self._receive()
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self.limit:
            raise BodyTooLarge(self.limit, self.setting)
        if self.json_chunks is not None:
            self.json_chunks.append(chunk)
            if not message.get("more_body", False):
                body, self.json_chunks = b"".join(self.json_chunks), None
                await self._check_depth(body)
        return message

    def _choose_limit(self) -> None:
        scope = self.scope
        limits = self.limits
        if getattr(scope.get("route"), "limits_own_body", False):
            self.passthrough, self.limit = True, 0
            return
        plain_json = is_plain_json(scope)
        own = getattr(scope.get("route"), "openapi_extra", None) or {}
        if MAX_BODY_BYTES in own:
            self.limit, self.setting = own[MAX_BODY_BYTES], own.get(MAX_BODY_SETTING, ROUTE_LIMIT)
        elif plain_json:
            self.limit, self.setting = limits.max_json_body_bytes, "PLUGHOST_MAX_JSON_BODY_BYTES"
        else:
            self.limit, self.setting = limits.max_body_bytes, "PLUGHOST_MAX_BODY_BYTES"
        if plain_json and MAX_BODY_BYTES not in own:
            self.json_chunks = []
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            raise BodyTooLarge(self.limit, self.setting, declared)

    async def _check_depth(self, body: bytes) -> None:
        depth = self.limits.max_json_depth
        try:
            if len(body) < CHECK_IN_THREAD_BYTES:
                check_depth(body, depth)
            else:
                await run_bulk(check_depth, body, depth)
        except JSONTooDeep as error:
            raise HTTPException(400, str(error)) from None


async def answer_too_large(request: Request, error: Exception) -> JSONResponse:
    """The app's 413 handler: JSON, and the connection closes (the rest of the body is not read)."""
    return JSONResponse(
        {"detail": getattr(error, "detail", "request body too large")}, status_code=413, headers={"connection": "close"}
    )
