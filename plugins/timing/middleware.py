"""The timing middleware: ``Server-Timing`` on every response, and overhead over upstream time.

Headers, set when the response starts:

- ``Server-Timing: app;dur=<ms>[, <upstream>;dur=<ms>...]`` on every response;
- ``X-Plughost-Duration-Ms`` and ``X-Plughost-Overhead-Ms`` (duration minus the
  upstream time reported through ``core.context.report_upstream``) when some
  upstream time was reported, as the gateway does for provider calls.

An event stream (``text/event-stream``) is timed again at its end: its last
message carries the totals as an SSE comment, which SSE clients ignore,
``: server-timing app;dur=<ms>, provider;dur=<ms>, overhead;dur=<ms>``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.context import RequestTimings, end_timings, start_timings


class TimingMiddleware:
    def __init__(self, app: ASGIApp, settings: object = None) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timings, token = start_timings()
        event_stream = False

        async def send_timed(message: Message) -> None:
            nonlocal event_stream
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                event_stream = _is_event_stream(headers)
                message["headers"] = [*headers, *timing_headers(timings)]
            elif event_stream and message["type"] == "http.response.body" and not message.get("more_body", False):
                totals = f": server-timing {server_timing(timings, with_overhead=True)}\n\n".encode()
                message["body"] = message.get("body", b"") + totals
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            end_timings(token)


def _is_event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    """An SSE stream of unknown length: the only kind whose end can carry the totals."""
    event_stream = False
    for name, value in headers:
        if name == b"content-length":
            return False
        if name == b"content-type":
            event_stream = value.startswith(b"text/event-stream")
    return event_stream


def server_timing(timings: RequestTimings, *, with_overhead: bool = False) -> str:
    elapsed = timings.elapsed()
    if not timings.upstream:
        return f"app;dur={elapsed * 1000:.2f}"
    parts = [f"app;dur={elapsed * 1000:.2f}"]
    parts += [f"{name};dur={seconds * 1000:.2f}" for name, seconds in timings.upstream.items()]
    if with_overhead:
        parts.append(f"overhead;dur={max(0.0, elapsed - sum(timings.upstream.values())) * 1000:.2f}")
    return ", ".join(parts)


def timing_headers(timings: RequestTimings) -> list[tuple[bytes, bytes]]:
    headers = [(b"server-timing", server_timing(timings).encode())]
    if timings.upstream:
        elapsed = timings.elapsed()
        overhead = max(0.0, elapsed - sum(timings.upstream.values()))
        headers += [
            (b"x-plughost-duration-ms", f"{elapsed * 1000:.2f}".encode()),
            (b"x-plughost-overhead-ms", f"{overhead * 1000:.2f}".encode()),
        ]
    return headers
