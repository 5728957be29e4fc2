"""OTLP benchmark: ingest throughput, event-loop stalls on big requests, memory under gzip bombs.

    python -m benchmarks.otel [--quick] [--write]

The server is ``python -m core serve`` with only the otel plugin, on the embedded
SQLite and on PostgreSQL (a fresh database each run).

- Ingest: 200 requests of one 50-span trace each, at concurrency 1 and 8. Payloads
  are protobuf, as the SDK exporters send them, with realistic attributes; every
  span is counted back through the query API afterwards. Target: >= 12,000 spans/s
  and p99 < 100 ms at concurrency 8 (the reference server: about 1,200 spans/s, p99 3.5 s).
- Stalls: ``/health`` is polled every 10 ms while the server takes one request of
  150,000 spans, and serves ``GET /api/otel/traces/{id}`` of a trace with 1.8 M
  attributes; the worst ``/health`` latency is the stall. Target: under 50 ms.
- Memory: 64 gzip bombs (1 GiB of zeros, 1 MiB compressed) at concurrency 32:
  peak RSS, and RSS 10 s after. Target: peak under 400 MiB, back within 20 % of idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from benchmarks.harness import (
    MiB,
    Server,
    benchmark_main,
    plughost_server,
    post_many,
    postgresql_database,
    server,
    tree_cpu,
)
from benchmarks.peers import MLFLOW_EXPERIMENT, mlflow_server, mlflow_version

SPANS_PER_TRACE = 50
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def payload(index: int) -> bytes:
    """One trace of 50 spans: a root and children, each with a handful of attributes and an event."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            KeyValue(key="service.name", value=AnyValue(string_value="bench")),
            KeyValue(key="host.name", value=AnyValue(string_value="b1")),
        ]
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
        span.kind = Span.SPAN_KIND_SERVER if position == 0 else Span.SPAN_KIND_CLIENT
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


def measure(backend: str, concurrency: int, requests: int, plugins: str = "otel") -> dict[str, float]:
    bodies = [payload(index) for index in range(requests)]
    with tempfile.TemporaryDirectory() as data_dir, contextlib.ExitStack() as stack:
        env = {"PLUGHOST_DATA_DIR": data_dir}
        if plugins != "all":
            env["PLUGHOST_PLUGINS"] = plugins
        if backend == "postgresql":
            env["PLUGHOST_DATABASE_URL"] = stack.enter_context(postgresql_database())
        command, port = plughost_server()
        with server(command, port, health="/health", env=env) as running:
            base = f"http://127.0.0.1:{port}"
            result = timed_ingest(running, bodies, concurrency, PROTOBUF)
            stored = count_back(base) - 10 * SPANS_PER_TRACE
    sent = requests * SPANS_PER_TRACE
    if stored != sent:
        raise RuntimeError(f"{backend}: sent {sent} spans, {stored} came back")
    return {**result, "stored": stored}


def measure_mlflow(concurrency: int, requests: int) -> dict[str, float]:
    """The peer: MLflow's tracking server (SQLite) takes the same traces on its OTLP/HTTP endpoint. Its
    answers are all 200 (checked); the spans are not counted back (its trace search pages through them
    at a few hundred a second, which would make the run longer than the measurement)."""
    bodies = [payload(index) for index in range(requests)]
    with mlflow_server() as running:
        result = timed_ingest(running, bodies, concurrency, {**PROTOBUF, **MLFLOW_EXPERIMENT})
    return {**result, "stored": float("nan")}


def timed_ingest(running: Server, bodies: list[bytes], concurrency: int, headers: dict[str, str]) -> dict[str, float]:
    """Post ``bodies`` after 10 warm-up requests: spans/s, latency percentiles, and the server's CPU per span."""
    asyncio.run(post_many(running.port, "/v1/traces", [payload(10_000 + i) for i in range(10)], 2, headers))
    cpu_before = tree_cpu(running.pid)
    started = time.perf_counter()
    latencies = asyncio.run(post_many(running.port, "/v1/traces", bodies, concurrency, headers))
    elapsed = time.perf_counter() - started
    cpu = tree_cpu(running.pid) - cpu_before
    sent = len(bodies) * SPANS_PER_TRACE
    latencies.sort()
    return {
        "spans_per_second": sent / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "cpu_ms_per_span": cpu / sent * 1000,
    }


class HealthPoller:
    """Polls ``/health`` every 10 ms on a keep-alive connection, in a thread; records each latency."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            reader = sock.makefile("rb")
            while not self._stop.is_set():
                started = time.perf_counter()
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                reader.read(length)
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def figures(self) -> tuple[float, float]:
        """(p99, worst) latency in ms."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, ordered[-1] * 1000


def big_request(spans: int, attributes_per_span: int) -> bytes:
    """One trace of ``spans`` spans, each with ``attributes_per_span`` small attributes."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="big")))
    scope_spans = resource_spans.scope_spans.add()
    trace_id = uuid.uuid4().bytes
    start = time.time_ns()
    attributes = [KeyValue(key=f"attribute.{i}", value=AnyValue(int_value=i)) for i in range(attributes_per_span)]
    for position in range(spans):
        span = scope_spans.spans.add()
        span.trace_id = trace_id
        span.span_id = (position + 1).to_bytes(8, "big")
        if position:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = f"operation-{position % 7}"
        span.start_time_unix_nano = start + position
        span.end_time_unix_nano = start + position + 1000
        span.attributes.extend(attributes)
    return request.SerializeToString()


@contextlib.contextmanager
def big_limits_server(backend: str) -> Iterator[Server]:
    """A server whose OTLP limits admit the big requests (64 MiB bodies)."""
    with tempfile.TemporaryDirectory() as data_dir, contextlib.ExitStack() as stack:
        env = {
            "PLUGHOST_PLUGINS": "otel",
            "PLUGHOST_DATA_DIR": data_dir,
            "PLUGHOST_OTEL_MAX_BODY_BYTES": str(64 * MiB),
            "PLUGHOST_OTEL_MAX_DECOMPRESSED_BYTES": str(64 * MiB),
        }
        if backend == "postgresql":
            env["PLUGHOST_DATABASE_URL"] = stack.enter_context(postgresql_database())
        command, port = plughost_server()
        with server(command, port, health="/health", env=env) as running:
            yield running


def post(port: int, body: bytes, headers: dict[str, str] = PROTOBUF) -> int:
    response = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=headers, timeout=300)
    return response.status_code


def measure_stalls(backend: str, quick: bool) -> list[str]:
    """Table rows: worst /health latency during a 150,000-span ingest and a 1.8 M-attribute trace read."""
    ingest_spans = 30_000 if quick else 150_000
    attribute_spans, attributes_per_span = (4, 90_000) if quick else (18, 100_000)
    rows = []
    with big_limits_server(backend) as running:
        body = big_request(ingest_spans, 0)
        with HealthPoller(running.port) as poller:
            status = post(running.port, body)
        p99, worst = poller.figures()
        rows.append(
            f"| {backend} | ingest of one request of {ingest_spans:,} spans ({len(body) / MiB:.0f} MiB) "
            f"| {status} | {p99:.1f} | {worst:.1f} | |"
        )
        request = ExportTraceServiceRequest.FromString(big_request(attribute_spans, attributes_per_span))
        spans = request.resource_spans[0].scope_spans[0].spans
        for span in spans:  # one span per request: each stays under the body limit
            part = ExportTraceServiceRequest()
            part.resource_spans.add().CopyFrom(request.resource_spans[0])
            del part.resource_spans[0].scope_spans[0].spans[:]
            part.resource_spans[0].scope_spans[0].spans.append(span)
            if post(running.port, part.SerializeToString()) != 200:
                raise RuntimeError("could not store the big trace")
        trace_id = spans[0].trace_id.hex()
        running.reset_peak()
        before, _ = running.memory()
        with HealthPoller(running.port) as poller:
            size = 0
            with httpx.stream(
                "GET", f"http://127.0.0.1:{running.port}/api/otel/traces/{trace_id}", timeout=300
            ) as response:
                for chunk in response.iter_raw():
                    size += len(chunk)
        p99, worst = poller.figures()
        _, peak = running.memory()
        rows.append(
            f"| {backend} | GET of a trace with {attribute_spans * attributes_per_span / 1e6:.1f} M attributes "
            f"({size / MiB:.0f} MiB of JSON) "
            f"| {response.status_code} | {p99:.1f} | {worst:.1f} | +{(peak - before) / MiB:.0f} MiB |"
        )
    return rows


def measure_bombs(quick: bool) -> str:
    """A table row: RSS idle, peak during 64 gzip bombs at concurrency 32, and 10 s after."""
    bomb = gzip.compress(b"\0" * (1024 * MiB), compresslevel=9)
    bombs = 16 if quick else 64
    with tempfile.TemporaryDirectory() as data_dir:
        command, port = plughost_server()
        with server(
            command, port, health="/health", env={"PLUGHOST_PLUGINS": "otel", "PLUGHOST_DATA_DIR": data_dir}
        ) as running:
            asyncio.run(post_many(port, "/v1/traces", [big_request(5, 5) for _ in range(5)], 1, PROTOBUF))  # warm up
            idle, _ = running.memory()
            running.reset_peak()
            statuses: list[int] = []

            async def burst() -> None:
                async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=32)) as client:
                    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
                    answers = await asyncio.gather(
                        *(
                            client.post(f"http://127.0.0.1:{port}/v1/traces", content=bomb, headers=headers)
                            for _ in range(bombs)
                        )
                    )
                    statuses.extend(answer.status_code for answer in answers)

            with HealthPoller(port) as poller:
                asyncio.run(burst())
            _, peak = running.memory()
            time.sleep(10)  # the figure asked for: RSS 10 s after the burst
            after, _ = running.memory()
    p99, worst = poller.figures()
    counts = ", ".join(f"{statuses.count(code)} x {code}" for code in sorted(set(statuses)))
    return (
        f"| {bombs} gzip bombs (1 GiB of zeros each) at concurrency 32 | {counts} "
        f"| {idle / MiB:.0f} MiB | {peak / MiB:.0f} MiB "
        f"| {after / MiB:.0f} MiB ({(after - idle) / idle * 100:+.0f} %) | {p99:.1f} / {worst:.1f} |"
    )


def run(quick: bool) -> str:
    return "\n\n".join([run_ingest(quick), run_stalls(quick)])


def run_stalls(quick: bool) -> str:
    lines = [
        "Event-loop stalls: `/health` polled every 10 ms during each case (one worker).",
        "",
        "| store | case | status | /health p99 ms | worst stall ms | RSS growth |",
        "|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        lines += measure_stalls(backend, quick)
        print(f"  stalls {backend} measured", file=sys.stderr)
    lines += [
        "",
        "Memory under gzip bombs (default limits: 32 MiB inflated per request, a 128 MiB global budget).",
        "",
        "| case | answers | idle RSS | peak RSS | RSS 10 s after | /health p99 / worst ms |",
        "|---|---|---|---|---|---|",
        measure_bombs(quick),
    ]
    return "\n".join(lines)


INGEST_SETUPS = (
    ("plughost, otel only", "sqlite", "otel"),
    ("plughost, every plugin", "sqlite", "all"),
    ("plughost, otel only", "postgresql", "otel"),
)


def run_ingest(quick: bool) -> str:
    requests = 50 if quick else 200
    peer_requests = 10 if quick else 24
    rounds = 1 if quick else 3
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    found: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    peer = f"MLflow {mlflow_version()}"
    for _ in range(rounds):  # the servers take turns, so that each round sees all of them under the same load
        for concurrency in (1, 8):
            for label, backend, plugins in INGEST_SETUPS:
                result = measure(backend, concurrency, requests, plugins)
                found.setdefault((label, backend, concurrency), []).append(result)
                print(f"  {label} {backend} c={concurrency}: {result['spans_per_second']:.0f} spans/s", file=sys.stderr)
            result = measure_mlflow(concurrency, peer_requests)
            found.setdefault((peer, "sqlite", concurrency), []).append(result)
            print(f"  {peer} c={concurrency}: {result['spans_per_second']:.0f} spans/s", file=sys.stderr)
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, load average {load} "
        f"at the start: {requests} requests of one {SPANS_PER_TRACE}-span trace (protobuf) to plughost, "
        f"{peer_requests} to the peer ({peer}'s tracking server, OTLP/HTTP `/v1/traces`, experiment 0), one uvicorn "
        f"worker each; medians of {rounds} rounds, the servers taking turns in each; plughost's spans counted back. "
        "CPU = the server's process tree, per span.",
        "",
        "| server | store | concurrency | spans/s | p50 ms | p99 ms | CPU ms per span | spans/s vs MLflow "
        "| MLflow CPU / this |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, backend, concurrency), results in found.items():
        figures = {name: statistics.median(r[name] for r in results) for name in results[0] if name != "stored"}
        reference = found[(peer, "sqlite", concurrency)]
        peer_rate = statistics.median(r["spans_per_second"] for r in reference)
        peer_cpu = statistics.median(r["cpu_ms_per_span"] for r in reference)
        lines.append(
            f"| {label} | {backend} | {concurrency} | {figures['spans_per_second']:.0f} | {figures['p50_ms']:.1f} "
            f"| {figures['p99_ms']:.1f} | {figures['cpu_ms_per_span']:.3f} "
            f"| {figures['spans_per_second'] / peer_rate:.1f}x | {peer_cpu / figures['cpu_ms_per_span']:.1f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "OTLP ingest", "otel", run)
