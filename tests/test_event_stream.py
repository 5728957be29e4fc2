"""``core.EventStreamResponse``: pieces written as they come, the stream ended when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from core import EventStreamResponse

SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


def test_each_piece_is_written_when_it_comes_then_the_end() -> None:
    async def main() -> list[Message]:
        sent: list[Message] = []
        second = asyncio.Event()
        client_done = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            await second.wait()
            yield b"data: 2\n\n"

        async def receive() -> Message:
            await client_done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        writing = asyncio.create_task(EventStreamResponse(body())(SCOPE, receive, send))
        await asyncio.sleep(0.05)
        assert [m.get("body") for m in sent] == [None, b"data: 1\n\n"]  # the first piece, before the second came
        second.set()
        await asyncio.wait_for(writing, 10)
        client_done.set()
        return sent

    sent = asyncio.run(main())
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert [(m.get("body"), m.get("more_body")) for m in sent[1:]] == [
        (b"data: 1\n\n", True),
        (b"data: 2\n\n", True),
        (b"", False),
    ]


def test_a_client_that_leaves_ends_the_stream_where_it_waits_and_closes_its_body() -> None:
    async def main() -> list[str]:
        happened: list[str] = []
        leave = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b"data: 1\n\n"
                await asyncio.sleep(3600)  # a provider gone quiet
                yield b"data: 2\n\n"
            finally:
                happened.append("body closed")

        async def receive() -> Message:
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            happened.append(message["type"])

        writing = asyncio.create_task(EventStreamResponse(body())(SCOPE, receive, send))
        await asyncio.sleep(0.05)
        leave.set()
        await asyncio.wait_for(writing, 10)  # ends without an error
        assert not writing.cancelled() and writing.cancelling() == 0
        return happened

    assert asyncio.run(main()) == ["http.response.start", "http.response.body", "body closed"]


def test_a_cancellation_from_outside_is_not_swallowed() -> None:
    async def main() -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            await asyncio.sleep(3600)

        async def receive() -> Message:
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            pass

        writing = asyncio.create_task(EventStreamResponse(body())(SCOPE, receive, send))
        await asyncio.sleep(0.05)
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing

    asyncio.run(main())
