"""The timing middleware through a real server: Server-Timing everywhere, overhead over upstream time."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from core import RouterContribution, hookimpl
from core.context import report_upstream
from core.testing import assert_plugin_contract, serve_in_thread

UPSTREAM_SECONDS = 0.05


class Upstream:
    """Routes that wait on a pretend upstream and report it, as the gateway does with providers."""

    PLUGHOST_NAME = "upstream"

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        router = APIRouter()

        @router.get("/api/unary")
        async def unary() -> dict[str, bool]:
            await asyncio.sleep(UPSTREAM_SECONDS)
            report_upstream("provider", UPSTREAM_SECONDS)
            return {"ok": True}

        @router.get("/api/stream")
        async def stream() -> StreamingResponse:
            async def events() -> AsyncIterator[bytes]:
                for index in range(3):
                    await asyncio.sleep(UPSTREAM_SECONDS / 3)
                    report_upstream("provider", UPSTREAM_SECONDS / 3)
                    yield f"data: {index}\n\n".encode()

            return StreamingResponse(events(), media_type="text/event-stream")

        return RouterContribution("upstream", router)


@pytest.fixture
def base(make_app: Any, register_plugin: Any) -> Iterator[str]:
    register_plugin(Upstream())
    with serve_in_thread(make_app(["timing"])) as url:
        yield url


def durations(header: str) -> dict[str, float]:
    return {name: float(value) for name, value in re.findall(r"(\w+);dur=([\d.]+)", header)}


def test_every_response_has_server_timing(base: str) -> None:
    for path in ("/health", "/version", "/no/such/page"):
        timing = durations(httpx.get(f"{base}{path}").headers["server-timing"])
        assert set(timing) == {"app"} and timing["app"] >= 0


def test_upstream_time_gives_duration_and_overhead_headers(base: str) -> None:
    response = httpx.get(f"{base}/api/unary")
    timing = durations(response.headers["server-timing"])
    assert timing["provider"] == pytest.approx(UPSTREAM_SECONDS * 1000)
    duration = float(response.headers["x-plughost-duration-ms"])
    overhead = float(response.headers["x-plughost-overhead-ms"])
    assert duration >= timing["provider"]
    assert overhead == pytest.approx(duration - timing["provider"], abs=0.02)
    assert "x-plughost-overhead-ms" not in httpx.get(f"{base}/health").headers


def test_a_stream_stays_a_stream_and_ends_with_its_totals(base: str) -> None:
    with httpx.stream("GET", f"{base}/api/stream") as response:
        chunks = list(response.iter_raw())
    assert chunks[0] == b"data: 0\n\n"  # events arrive one by one, not buffered
    assert len(chunks) >= 3
    body = b"".join(chunks).decode()
    assert body.startswith("data: 0\n\ndata: 1\n\ndata: 2\n\n")
    comment = re.search(r"^: server-timing (.*)$", body, re.M)
    assert comment, body
    totals = durations(comment.group(1))
    assert totals["provider"] == pytest.approx(UPSTREAM_SECONDS * 1000)
    assert totals["app"] >= totals["provider"]
    assert totals["overhead"] == pytest.approx(totals["app"] - totals["provider"], abs=0.02)


def test_keeps_the_plugin_contract() -> None:
    import plugins.timing

    assert_plugin_contract(plugins.timing)
