"""OTLP ingest benchmark: 200 requests of one 50-span trace each, at concurrency 1 and 8.

    python -m benchmarks.otel [--quick] [--write]

The server is ``python -m core serve`` with only the otel plugin, on the embedded
SQLite and on PostgreSQL (a fresh database each run). Payloads are protobuf, as
the SDK exporters send them, with realistic attributes; every span is counted
back through the query API afterwards. Target: >= 12,000 spans/s and p99 < 100 ms
at concurrency 8 (the reference server: about 1,200 spans/s, p99 3.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from benchmarks.harness import benchmark_main, plughost_server, post_many, postgresql_database, server

SPANS_PER_TRACE = 50
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def payload(index: int) -> bytes:
    """One trace of 50 spans: a root and children, each with a handful of attributes and an event."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [KeyValue(key="service.name", value=AnyValue(string_value="bench")), KeyValue(key="host.name", value=AnyValue(string_value="b1"))]
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "bench"
    trace_id = uuid.uuid4().bytes
    start = time.time_ns()
    for position in range(SPANS_PER_TRACE):
        span = scope_spans.spans.add()
        span.trace_id = trace_id
        span.span_id = (index * SPANS_PER_TRACE + position + 1).to_bytes(8, "big")
        if position:
            span.parent_span_id = (index * SPANS_PER_TRACE + 1).to_bytes(8, "big")
        span.name = f"operation-{position % 7}"
        span.kind = 2 if position == 0 else 3
        span.start_time_unix_nano = start + position * 1000
        span.end_time_unix_nano = start + position * 1000 + 500_000
        span.attributes.extend(
            [
                KeyValue(key="http.method", value=AnyValue(string_value="GET")),
                KeyValue(key="http.route", value=AnyValue(string_value=f"/api/items/{position}")),
                KeyValue(key="http.status_code", value=AnyValue(int_value=200)),
                KeyValue(key="db.rows", value=AnyValue(int_value=position)),
                KeyValue(key="cache.hit", value=AnyValue(bool_value=position % 2 == 0)),
            ]
        )
        event = span.events.add()
        event.name = "checkpoint"
        event.time_unix_nano = start + position * 1000 + 1000
    return request.SerializeToString()


def count_back(base: str) -> int:
    total, token = 0, None
    while True:
        params = {"limit": 1000, **({"page_token": token} if token else {})}
        page = httpx.get(f"{base}/api/otel/traces", params=params, timeout=60).json()
        total += sum(trace["span_count"] for trace in page["traces"])
        token = page["next_page_token"]
        if token is None:
            return total


def measure(backend: str, concurrency: int, requests: int) -> dict[str, float]:
    bodies = [payload(index) for index in range(requests)]
    with tempfile.TemporaryDirectory() as data_dir, contextlib.ExitStack() as stack:
        env = {"PLUGHOST_PLUGINS": "otel", "PLUGHOST_DATA_DIR": data_dir}
        if backend == "postgresql":
            env["PLUGHOST_DATABASE_URL"] = stack.enter_context(postgresql_database())
        command, port = plughost_server()
        with server(command, port, health="/health", env=env):
            base = f"http://127.0.0.1:{port}"
            asyncio.run(post_many(port, "/v1/traces", [payload(10_000 + i) for i in range(10)], 2, PROTOBUF))  # warm up
            started = time.perf_counter()
            latencies = asyncio.run(post_many(port, "/v1/traces", bodies, concurrency, PROTOBUF))
            elapsed = time.perf_counter() - started
            stored = count_back(base) - 10 * SPANS_PER_TRACE
    sent = requests * SPANS_PER_TRACE
    if stored != sent:
        raise RuntimeError(f"{backend}: sent {sent} spans, {stored} came back")
    latencies.sort()
    return {
        "spans_per_second": sent / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "stored": stored,
    }


def run(quick: bool) -> str:
    requests = 50 if quick else 200
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}: {requests} requests of one "
        f"{SPANS_PER_TRACE}-span trace (protobuf), one uvicorn worker; every span counted back.",
        "",
        "| store | concurrency | spans/s | p50 ms | p99 ms | spans counted back | vs reference (1,200 spans/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        for concurrency in (1, 8):
            result = measure(backend, concurrency, requests)
            print(f"  {backend} c={concurrency}: {result['spans_per_second']:.0f} spans/s", file=sys.stderr)
            lines.append(
                f"| {backend} | {concurrency} | {result['spans_per_second']:.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | "
                f"{result['stored']:.0f} | {result['spans_per_second'] / 1200:.1f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "OTLP ingest", "otel", run)
