"""A server-sent event stream's response: its body's pieces written as they come, stopped when the client leaves.

Starlette's ``StreamingResponse`` does the same (under uvicorn's ASGI 2.3) in an anyio task group:
the body written by one task, the client's disconnect awaited by another, a cancel scope over
both; a tenth of a streamed gateway call's CPU. Here the request's own task writes the
body and one plain asyncio task awaits ``http.disconnect``: when the client leaves it cancels the
writing where it waits (on the provider's next event, mostly), the body's generators close, and
the response ends as Starlette's does, without an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class EventStreamResponse(Response):
    """``text/event-stream``, each piece of ``body`` written (and flushed) as it comes."""

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterable[bytes], headers: Mapping[str, str] | None = None) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writing = asyncio.current_task()
        assert writing is not None
        left = False

        async def await_leaving() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            left = True
            writing.cancel()

        watch = asyncio.create_task(await_leaving())
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for piece in self.body_iterator:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not left:  # a cancellation from outside (the server stopping): not ours to end
                raise
            writing.uncancel()
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:  # cancelled in a write, the body waits at a piece: its generators end now
                await close()
        finally:
            watch.cancel()  # before any await: once the writing is done, the watch cannot cancel it any more
