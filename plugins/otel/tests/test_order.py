"""The trace list in any order (``sort=``), page after page, on SQLite and PostgreSQL, with traces the
OpenTelemetry SDK's own exporter sends."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from core.testing import serve_in_thread

START = 1_767_225_600_000_000_000  # 2026-01-01
MS = 1_000_000
KEYS = {
    "start_time": lambda trace: trace["start_time_unix_nano"],
    "duration": lambda trace: trace["duration_ms"],
    "tokens": lambda trace: trace["input_tokens"] + trace["output_tokens"],
    "spans": lambda trace: trace["span_count"],
    "errors": lambda trace: trace["error_count"],
}


@pytest.fixture
def base(make_app: Any, database_url: str) -> Iterator[str]:
    with serve_in_thread(make_app(["otel"], {"database_url": database_url})) as url:
        yield url


def export_traces(base: str, count: int = 9) -> None:
    """``count`` traces, a second apart: durations, span counts, errors and tokens vary, with ties in each."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=10)))
    tracer = provider.get_tracer("order-test")
    for number in range(count):
        start = START + number * 1000 * MS
        duration = (number * 37 % 5 + 1) * 10 * MS  # 10..50 ms, each duration twice or so
        root = tracer.start_span(f"GET /item/{number}", kind=SpanKind.SERVER, start_time=start)
        with_root = set_span_in_context(root)
        for child in range(number % 3):
            span = tracer.start_span("db.query", context=with_root, start_time=start + MS)
            if child == 0 and number % 4 == 1:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
            span.end(end_time=start + 2 * MS)
        if number % 2 == 0:
            call = tracer.start_span(
                "chat gpt-4o-mini",
                context=with_root,
                start_time=start + 2 * MS,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 100 * (number % 3),
                    "gen_ai.usage.output_tokens": 10,
                },
            )
            call.end(end_time=start + 3 * MS)
        root.end(end_time=start + duration)
    provider.shutdown()  # exports what the batch holds
    assert len(listed(base)) == count


def listed(base: str, **params: Any) -> list[dict[str, Any]]:
    """Every trace, page after page of 2, in the order asked for."""
    found: list[dict[str, Any]] = []
    token = None
    while True:
        response = httpx.get(
            f"{base}/api/otel/traces", params={"limit": 2, **params, **({"page_token": token} if token else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["traces"]
        token = page["next_page_token"]
        if token is None:
            return found


def test_every_sort_key_in_both_directions_page_after_page(base: str) -> None:
    export_traces(base)
    everything = listed(base)
    assert len(everything) == 9
    assert [t["start_time_unix_nano"] for t in everything] == sorted(
        (t["start_time_unix_nano"] for t in everything), reverse=True
    )  # newest first by default
    for key, value in KEYS.items():
        assert len({value(trace) for trace in everything}) > 1, f"{key}: the traces must differ in it"
        for descending in (False, True):
            sort = ("-" if descending else "") + key
            expected = sorted(everything, key=lambda trace: (value(trace), trace["trace_id"]), reverse=descending)
            assert [t["trace_id"] for t in listed(base, sort=sort)] == [t["trace_id"] for t in expected], sort
    # with a filter: the slowest traces that have an error
    errors = listed(base, sort="-duration", status="error")
    assert errors and all(t["error_count"] for t in errors)
    assert [t["duration_ms"] for t in errors] == sorted((t["duration_ms"] for t in errors), reverse=True)


def test_a_bad_sort_or_a_token_of_another_sort_is_refused_saying_why(base: str) -> None:
    export_traces(base)
    bad = httpx.get(f"{base}/api/otel/traces", params={"sort": "latency"})
    assert bad.status_code == 400
    detail = bad.json()["detail"]
    assert "'latency'" in detail and all(name in detail for name in ("-duration", "tokens", "spans", "errors"))
    page = httpx.get(f"{base}/api/otel/traces", params={"sort": "-tokens", "limit": 2}).json()
    other = httpx.get(f"{base}/api/otel/traces", params={"sort": "duration", "page_token": page["next_page_token"]})
    assert other.status_code == 400 and "sort=-tokens" in other.json()["detail"]
    forged = base64.urlsafe_b64encode(b"-tokens:many:" + b"0" * 32).decode()
    refused = httpx.get(f"{base}/api/otel/traces", params={"sort": "-tokens", "page_token": forged})
    assert refused.status_code == 400 and "page_token" in refused.json()["detail"]


def test_the_schema_lists_the_sorts(base: str) -> None:
    schema = httpx.get(f"{base}/openapi.json").json()
    [sort] = [p for p in schema["paths"]["/api/otel/traces"]["get"]["parameters"] if p["name"] == "sort"]
    assert {"start_time", "-start_time", "duration", "-duration", "tokens", "spans", "errors"} <= set(
        sort["schema"]["enum"]
    )
    assert sort["schema"]["default"] == "-start_time"
