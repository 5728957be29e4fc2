"""The floor of any Python gateway: a raw ASGI app that forwards the body to the provider and the answer back.

    python -m benchmarks.bare_proxy PORT UPSTREAM_URL

No routing, parsing, translation, fallback or records: uvicorn plus one pooled
aiohttp session, the same stack the gateway runs on. The gateway benchmark
measures it in the same run, so the gateway's own cost is the difference.
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn

from core.server import NoDelayHTTPProtocol


def create_proxy(upstream: str) -> Any:
    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                session = aiohttp.ClientSession()
                await send({"type": "lifespan.startup.complete"})
            if session is not None:
                await session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["path"] == "/health":
            status, headers, body = 200, [], b"ok"
        else:
            assert session is not None
            async with session.post(
                upstream + scope["path"], data=b"".join(chunks), headers={"Content-Type": "application/json"}
            ) as response:
                status, body = response.status, await response.read()
                headers = [(b"content-type", response.headers.get("Content-Type", "application/json").encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_proxy(sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        http=NoDelayHTTPProtocol,
        log_level="warning",
    )
