"""A million spans: list, filter and fetch latency, and ingest rate, on a store holding 1,000,000 spans.

    python -m benchmarks.million [--quick] [--write]

For SQLite and for PostgreSQL (a fresh database each): 20,000 traces of 50 spans,
with realistic attributes (HTTP, database, internal and GenAI spans: models,
token counts), are written straight into the store (``SpanStore.add`` in
batches of 500 traces: the rows the OTLP decoder makes, not HTTP requests).
Then a plughost server on that database answers ``GET /api/otel/traces`` with no
filter, each filter, each sort and combinations, a deep page of a sort, and ``GET /api/otel/sessions``
(30 % of the traces are turns of sessions of about three) (p50/p95 of 30 calls each), and
``GET /api/otel/traces/{id}`` of 50-span traces. The ingest rate (50-span
traces, 8 concurrent ``add`` calls) is measured on an empty store and at
a million spans, in alternating rounds (a fresh store, then the full one, three
times; medians), after PostgreSQL's statistics are refreshed (``ANALYZE``, as
autovacuum does within a minute of a bulk load). Targets: list and filter p95
under 100 ms; ingest at a million within 20 % of the empty-store rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from sqlalchemy import text

from benchmarks.harness import benchmark_main, plughost_server, postgresql_database, server
from core.database import create_engine, migrate
from plugins.otel import MIGRATIONS
from plugins.otel.decode import to_rows
from plugins.otel.store import SpanStore

SPANS_PER_TRACE = 50
ROUNDS = 3
TRACES_PER_BATCH = 500
START = 1_767_225_600_000_000_000  # 2026-01-01
SERVICES = ["checkout", "catalog", "payments", "assistant", "search"]
PROJECTS = ["shop", "ml", "internal"]
ROUTES = [f"/api/{area}/{{id}}" for area in ("items", "orders", "users", "carts", "reviews")] + [
    f"/api/v{i}/search" for i in range(15)
]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3.1-70b"]
TABLES = [f"table_{i}" for i in range(30)]


def _value(raw: Any) -> AnyValue:
    if isinstance(raw, bool):
        return AnyValue(bool_value=raw)
    if isinstance(raw, int):
        return AnyValue(int_value=raw)
    return AnyValue(string_value=str(raw))


def trace_request(number: int, rng: random.Random) -> ExportTraceServiceRequest:
    """Trace ``number``: a server root, then database, HTTP client, internal and (in 30 % of traces) LLM spans."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    service = rng.choice(SERVICES)
    resource_spans.resource.attributes.extend(
        [
            KeyValue(key="service.name", value=_value(service)),
            KeyValue(key="host.name", value=_value(f"host-{number % 7}")),
        ]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    trace_id = (number + 1).to_bytes(16, "big")
    start = START + number * 50_000_000  # one trace every 50 ms
    llm = rng.random() < 0.3
    model = rng.choice(MODELS)
    error_at = rng.randrange(SPANS_PER_TRACE) if rng.random() < 0.05 else -1
    for position in range(SPANS_PER_TRACE):
        span = scope.spans.add()
        span.trace_id = trace_id
        span.span_id = (position + 1).to_bytes(8, "big")
        span.start_time_unix_nano = start + position * 100_000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(50_000, 5_000_000)
        if position == 0:
            route = rng.choice(ROUTES)
            span.name, span.kind = f"{'POST' if number % 3 == 0 else 'GET'} {route}", Span.SPAN_KIND_SERVER
            span.end_time_unix_nano = start + rng.randrange(10_000_000, 900_000_000)
            attributes: dict[str, Any] = {
                "http.method": "POST" if number % 3 == 0 else "GET",
                "http.route": route,
                "http.status_code": 500 if error_at >= 0 else 200,
                "user.id": f"u-{number % 1000:04d}",
                "tenant": f"tenant-{rng.randrange(50)}",
            }
            if llm:  # a chat app's turn: its conversation spans about ten traces' time
                attributes["session.id"] = f"session-{number // 10}"
        else:
            span.parent_span_id = (1).to_bytes(8, "big")
            if llm and position in (10, 30):
                span.name, span.kind = f"chat {model}", Span.SPAN_KIND_CLIENT
                attributes = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai" if model.startswith("gpt") else "other",
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": f"{model}-2025",
                    "gen_ai.usage.input_tokens": rng.randrange(200, 8000),
                    "gen_ai.usage.output_tokens": rng.randrange(20, 1000),
                }
            elif position % 3 == 1:
                table = TABLES[rng.randrange(len(TABLES))]
                span.name, span.kind = f"SELECT {table}", Span.SPAN_KIND_CLIENT
                attributes = {
                    "db.system": "postgresql",
                    "db.operation": "SELECT",
                    "db.sql.table": table,
                    "db.rows": rng.randrange(100),
                }
            elif position % 3 == 2:
                span.name, span.kind = "GET", Span.SPAN_KIND_CLIENT
                attributes = {
                    "http.method": "GET",
                    "http.url": f"https://inventory.internal/items/{rng.randrange(100)}",
                    "http.status_code": 200,
                }
            else:
                span.name = f"compute.step_{position % 12}"
                attributes = {"code.function": f"step_{position % 12}", "cache.hit": rng.random() < 0.8}
        if position == error_at:
            span.status.code = Status.STATUS_CODE_ERROR
        span.attributes.extend(KeyValue(key=key, value=_value(raw)) for key, raw in attributes.items())
    return request


def rows_of(numbers: range, rng: random.Random) -> list[dict[str, Any]]:
    return [
        row
        for number in numbers
        for row in to_rows(trace_request(number, rng), workspace="default", project=PROJECTS[number % 3]).rows
    ]


async def load(url: str, traces: int) -> float:
    """Write ``traces`` traces into the store; returns the seconds spent writing (row building excluded)."""
    engine = create_engine(url)
    store = SpanStore(engine)
    rng = random.Random(1)
    writing = 0.0
    try:
        for first in range(0, traces, TRACES_PER_BATCH):
            rows = rows_of(range(first, min(traces, first + TRACES_PER_BATCH)), rng)
            started = time.perf_counter()
            stored = await store.add(rows)
            writing += time.perf_counter() - started
            if stored.rejected:
                raise RuntimeError(f"the store refused {stored.rejected} spans: {stored.reasons}")
            print(f"    {first + TRACES_PER_BATCH:,} traces", file=sys.stderr, end="\r")
    finally:
        await engine.dispose()
    return writing


async def ingest_rate(url: str, first: int, traces: int, runs: int = 1) -> float:
    """Spans/s for ``traces`` new 50-span traces, one per ``add`` call, 8 calls at a time (as 8 clients):
    the median of ``runs`` runs, after a warm-up run (connections, prepared statements)."""
    engine = create_engine(url)
    store = SpanStore(engine)
    rng = random.Random(first)
    rates = []
    try:
        for run in range(runs + 1):
            base = first + run * traces
            batches = [rows_of(range(number, number + 1), rng) for number in range(base, base + traces)]
            started = time.perf_counter()
            for group in range(0, traces, 8):
                await asyncio.gather(*(store.add(rows) for rows in batches[group : group + 8]))
            if run:
                rates.append(traces * SPANS_PER_TRACE / (time.perf_counter() - started))
        return statistics.median(rates)
    finally:
        await engine.dispose()


def queries(traces: int) -> list[tuple[str, dict[str, Any]]]:
    middle = datetime.fromtimestamp((START + traces * 25_000_000) / 1e9, tz=UTC)
    return [
        ("no filter", {}),
        ("service", {"service": "payments"}),
        ("project", {"project": "ml"}),
        ("status=error", {"status": "error"}),
        (
            "start window (1 min)",
            {
                "start_after": middle.isoformat(),
                "start_before": middle.replace(minute=(middle.minute + 1) % 60).isoformat(),
            },
        ),
        ("min_duration_ms=850", {"min_duration_ms": 850}),
        ("name (span name)", {"name": "SELECT table_7"}),
        ("model", {"model": "claude-3-5-sonnet"}),
        ("min_tokens=12000", {"min_tokens": 12000}),
        ("attr, common value (db.system)", {"attr.db.system": "postgresql"}),
        ("attr, rare value (user.id: 20 traces)", {"attr.user.id": "u-0042"}),
        ("attr, no match", {"attr.user.id": "nobody"}),
        ("model + status=error + service", {"model": "gpt-4o", "status": "error", "service": "checkout"}),
        ("attr + min_tokens + project", {"attr.tenant": "tenant-7", "min_tokens": 1000, "project": "shop"}),
        ("sort=-duration", {"sort": "-duration"}),
        ("sort=duration", {"sort": "duration"}),
        ("sort=-tokens", {"sort": "-tokens"}),
        ("sort=-spans", {"sort": "-spans"}),
        ("sort=-errors", {"sort": "-errors"}),
        ("sort=start_time (oldest first)", {"sort": "start_time"}),
        ("sort=-duration + status=error", {"sort": "-duration", "status": "error"}),
        ("sort=-tokens + model", {"sort": "-tokens", "model": "gpt-4o"}),
        ("sort=-duration + service", {"sort": "-duration", "service": "payments"}),
        ("sort=-duration + attr, no match", {"sort": "-duration", "attr.user.id": "nobody"}),
        ("session", {"session": f"session-{traces // 20}"}),
    ]


def timed(client: httpx.Client, path: str, params: dict[str, Any], calls: int) -> tuple[float, float, int]:
    """(p50 ms, p95 ms, traces in the page) over ``calls`` calls after 2 warm-up calls."""
    found = 0
    for _ in range(2):
        response = client.get(path, params=params)
        response.raise_for_status()
        found = len(next((value for value in response.json().values() if isinstance(value, list)), []))
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return statistics.median(latencies), latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))], found


@contextlib.contextmanager
def database(backend: str, data_dir: str, name: str) -> Iterator[str]:
    if backend == "postgresql":
        with postgresql_database() as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{data_dir}/{name}.db"


async def prepare(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine, MIGRATIONS, "otel")
    await engine.dispose()


async def analyze(url: str) -> None:
    """PostgreSQL's autovacuum analyzes a table within a minute of a bulk load; do it now."""
    engine = create_engine(url)
    async with engine.begin() as connection:  # committed: statistics gathered in a rolled-back transaction are lost
        await connection.execute(text("ANALYZE"))
    await engine.dispose()


def measure(backend: str, quick: bool) -> list[str]:
    traces = 2_000 if quick else 20_000
    probe = 100 if quick else 200
    calls = 10 if quick else 30
    rows = []
    with (
        tempfile.TemporaryDirectory() as data_dir,
        database(backend, data_dir, "full") as url,
        database(backend, data_dir, "empty") as empty_url,
    ):
        asyncio.run(prepare(url))
        asyncio.run(prepare(empty_url))
        writing = asyncio.run(load(url, traces))
        if backend == "postgresql":
            asyncio.run(analyze(url))
        # Interleaved, so that both rates see the same machine (it is shared and noisy).
        empty_rates, full_rates = [], []
        for round_ in range(ROUNDS):
            empty_rates.append(asyncio.run(ingest_rate(empty_url, 10_000_000 + round_ * 100_000, probe)))
            full_rates.append(asyncio.run(ingest_rate(url, 20_000_000 + round_ * 100_000, probe)))
        empty_rate, full_rate = statistics.median(empty_rates), statistics.median(full_rates)
        spans = (traces + ROUNDS * 2 * probe) * SPANS_PER_TRACE
        print(
            f"  {backend}: {spans:,} spans; bulk load {traces * SPANS_PER_TRACE / writing:,.0f} spans/s",
            file=sys.stderr,
        )
        command, port = plughost_server()
        env = {"PLUGHOST_PLUGINS": "otel", "PLUGHOST_DATA_DIR": data_dir, "PLUGHOST_DATABASE_URL": url}
        with (
            server(command, port, health="/health", env=env),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        ):
            for label, params in queries(traces):
                p50, p95, found = timed(client, "/api/otel/traces", {"limit": 50, **params}, calls)
                verdict = "yes" if p95 < 100 else "**no**"
                rows.append(f"| {backend} | list: {label} | {found} | {p50:.1f} | {p95:.1f} | {verdict} |")
            deep: dict[str, Any] = {"limit": 50, "sort": "-tokens"}
            for _ in range(20):  # the 21st page of the list by tokens, most first
                deep["page_token"] = client.get("/api/otel/traces", params=deep).json()["next_page_token"]
            for label, path, params in (
                ("list: sort=-tokens, 21st page", "/api/otel/traces", deep),
                ("sessions: latest first", "/api/otel/sessions", {"limit": 50}),
            ):
                p50, p95, found = timed(client, path, params, calls)
                verdict = "yes" if p95 < 100 else "**no**"
                rows.append(f"| {backend} | {label} | {found} | {p50:.1f} | {p95:.1f} | {verdict} |")
            fetch = [
                timed(client, f"/api/otel/traces/{number + 1:032x}", {}, max(3, calls // 10))
                for number in range(0, traces, traces // 10)
            ]
            rows.append(
                f"| {backend} | fetch one 50-span trace | 1 | {statistics.median(f[0] for f in fetch):.1f} | "
                f"{max(f[1] for f in fetch):.1f} | |"
            )
        change = (full_rate - empty_rate) / empty_rate * 100
        rows.append(
            f"| {backend} | ingest, spans/s: empty store {empty_rate:,.0f}, "
            f"at {spans / 1e6:.2f} M spans {full_rate:,.0f} ({change:+.0f} %) "
            f"| | | | {'yes' if change > -20 else '**no**'} |"
        )
        rows.append(
            f"| {backend} | bulk load of {traces * SPANS_PER_TRACE:,} spans (`SpanStore.add`, 500 traces a call) "
            f"| | | | {traces * SPANS_PER_TRACE / writing:,.0f} spans/s |"
        )
    return rows


def run(quick: bool) -> str:
    traces = 2_000 if quick else 20_000
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, 2 cores: "
        f"{traces:,} traces x {SPANS_PER_TRACE} spans = {traces * SPANS_PER_TRACE:,} spans in the store, "
        "one uvicorn worker (PostgreSQL analyzed after the load); "
        "pages of 50 traces; latency seen by an HTTP client on the same machine.",
        "",
        "| store | case | traces in page | p50 ms | p95 ms | p95 < 100 ms / within 20 % |",
        "|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        lines += measure(backend, quick)
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "A million spans", "million", run)
