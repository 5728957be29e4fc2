"""The apps under test: one Flask app behind each bridge, and a native ASGI app as the limit.

``python -m benchmarks.apps VARIANT PORT`` serves one variant with uvicorn (one
worker, the same protocol class for all), so each runs in its own process and its
memory can be measured alone.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import anyio
import uvicorn
from flask import Flask, Response, request

CHUNK = 64 * 1024
SMALL_BODY = b"hello from flask"


def flask_app() -> Flask:
    app = Flask("bench")

    @app.get("/small")
    def small() -> bytes:
        return SMALL_BODY

    @app.post("/upload")
    def upload() -> str:
        piece = int(request.args.get("read", CHUNK))
        total = 0
        while chunk := request.stream.read(piece):
            total += len(chunk)
        return str(total)

    @app.get("/stream")
    def stream() -> Response:
        size = int(request.args["bytes"])

        def generate() -> Any:
            for _ in range(size // CHUNK):
                yield b"s" * CHUNK  # a new block each time, as real data would be

        return Response(generate(), mimetype="application/octet-stream", headers={"Content-Length": str(size)})

    return app


async def native(scope: Any, receive: Any, send: Any) -> None:
    """The limit: a plain ASGI endpoint doing what the Flask handlers do."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/upload":
        total, more = 0, True
        while more:
            message = await receive()
            total += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(total).encode()
    else:
        body = SMALL_BODY
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]}
    )
    await send({"type": "http.response.body", "body": body})


def list_join_bridge(app: Flask) -> Any:
    """The reference design: Starlette's responder with the body kept as a list joined once (O(n))."""
    from starlette._utils import create_collapsing_task_group
    from starlette.middleware.wsgi import WSGIResponder, build_environ

    class ListJoinResponder(WSGIResponder):
        async def __call__(self, receive: Any, send: Any) -> None:
            chunks, more_body = [], True
            while more_body:
                message = await receive()
                chunks.append(message.get("body", b""))
                more_body = message.get("more_body", False)
            environ = build_environ(self.scope, b"".join(chunks))
            del chunks
            async with create_collapsing_task_group() as task_group:
                task_group.start_soon(self.sender, send)
                async with self.stream_send:
                    await anyio.to_thread.run_sync(self.wsgi, environ, self.start_response)

    async def bridge(scope: Any, receive: Any, send: Any) -> None:
        await ListJoinResponder(app, scope)(receive, send)

    return bridge


def bare_fastapi() -> Any:
    """The reference for the middleware benchmark: FastAPI with one route, nothing else."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def build(variant: str) -> Any:
    if variant == "bare-fastapi":
        return bare_fastapi()
    app = flask_app()
    if variant == "plughost":
        from core.bridge import WSGIBridge

        return WSGIBridge(app, max_body_bytes=1 << 40, threads=40)
    if variant == "starlette":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.middleware.wsgi import WSGIMiddleware
        return WSGIMiddleware(app)
    if variant == "list+join":
        return list_join_bridge(app)
    if variant == "a2wsgi":
        from a2wsgi import WSGIMiddleware as A2WSGIMiddleware

        wsgi: Any = app  # a2wsgi types its environ narrower than Flask does (a TypedDict, not a dict)
        return A2WSGIMiddleware(wsgi)
    if variant == "native":
        return native
    raise SystemExit(f"unknown variant {variant!r}")


VARIANTS = ("plughost", "a2wsgi", "list+join", "starlette", "native")

if __name__ == "__main__":
    from core.server import NoDelayHTTPProtocol

    variant, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(
        build(variant), host="127.0.0.1", port=port, log_level="warning", http=NoDelayHTTPProtocol, access_log=False
    )
