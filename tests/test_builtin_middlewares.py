"""The three built-in middlewares together: their order, and headers that survive every refusal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from core import RouterContribution, hookimpl
from core.testing import serve_in_thread


class Events:
    """Streams whose producer waits for the client's go-ahead (``POST /api/events/release``): a stream held
    back anywhere (a middleware, the server) never gets it, and the client's read times out."""

    PLUGHOST_NAME = "events"

    def __init__(self) -> None:
        self.released = asyncio.Event()

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        router = APIRouter()

        @router.get("/api/events")
        async def events(first: bool = True) -> StreamingResponse:
            async def produce() -> AsyncIterator[bytes]:
                if first:
                    yield b"data: first\n\n"
                await self.released.wait()
                yield b"data: second\n\n"

            return StreamingResponse(produce(), media_type="text/event-stream")

        @router.post("/api/events/release")
        async def release() -> dict[str, bool]:
            self.released.set()
            return {"released": True}

        return RouterContribution("events", router)


@pytest.fixture
def base(make_app: Any, register_plugin: Any) -> Iterator[str]:
    register_plugin(Events())
    with serve_in_thread(make_app(["security", "workspace", "timing"])) as url:
        yield url


def test_order_is_security_then_workspace_then_timing(make_app: Any) -> None:
    app = make_app(["timing", "workspace", "security"])
    assert [c.name for c in app.assembly.middlewares.order] == ["security", "workspace", "timing"]


def test_security_headers_are_on_a_workspace_400_and_a_bridged_404(base: str) -> None:
    refused = httpx.get(f"{base}/version", headers={"X-Plughost-Workspace": "NOT VALID"})
    assert refused.status_code == 400
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert "server-timing" not in refused.headers  # refused before timing ran
    missing = httpx.get(f"{base}/no/such/flask/page", headers={"X-Plughost-Workspace": "team-a"})
    assert missing.status_code == 404 and "There is no console page at" in missing.text  # the console's 404
    assert missing.headers["x-content-type-options"] == "nosniff"
    assert missing.headers["x-plughost-workspace"] == "team-a"
    assert missing.headers["server-timing"].startswith("app;dur=")


def test_a_bad_host_is_refused_before_anything_else_runs(base: str) -> None:
    response = httpx.get(
        f"{base}/version", headers={"Host": "rebind.attacker.example", "X-Plughost-Workspace": "NOT VALID"}
    )
    assert response.status_code == 403  # not the workspace's 400
    assert "x-plughost-workspace" not in response.headers and "server-timing" not in response.headers


def test_streams_stay_streaming_through_all_three(base: str) -> None:
    with httpx.stream("GET", f"{base}/api/events", timeout=30) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"data: first\n\n"  # delivered while the producer waits for the go-ahead
        httpx.post(f"{base}/api/events/release")
        rest = b"".join(chunks)
    assert rest.startswith(b"data: second\n\n") and b": server-timing app;dur=" in rest


def test_a_streams_head_goes_out_before_its_first_chunk(base: str) -> None:
    """The server sends a sized answer's head with its body; a stream's head must not wait for a chunk."""
    with httpx.stream("GET", f"{base}/api/events?first=false", timeout=30) as response:  # the head is in
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-content-type-options"] == "nosniff"
        httpx.post(f"{base}/api/events/release")
        assert b"".join(response.iter_raw()).startswith(b"data: second\n\n")
