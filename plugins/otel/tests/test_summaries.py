"""Trace summaries stay right when two processes write halves of the same traces at the same moment."""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from core.database import create_engine, migrate
from plugins.otel import MIGRATIONS
from plugins.otel.decode import to_rows
from plugins.otel.span_writes import summarise
from plugins.otel.store import SpanStore, TraceFilter

TRACES = 600
SPANS_PER_TRACE = 8
START = 1_700_000_000_000_000_000


def trace_rows(number: int) -> list[dict[str, Any]]:
    """One trace: a root, children with varied times, one error child in the second half for odd traces."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", f"svc-{number % 3}"
    spans = resource_spans.scope_spans.add().spans
    for position in range(SPANS_PER_TRACE):
        span = spans.add()
        span.trace_id = (number + 1).to_bytes(16, "big")
        span.span_id = (position + 1).to_bytes(8, "big")
        if position:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = "root" if position == 0 else f"child-{position}"
        span.start_time_unix_nano = START + number * 10**9 + position * 1000
        span.end_time_unix_nano = START + number * 10**9 + (position * 7919 % 100) * 10**6 + 1
        if number % 2 and position == SPANS_PER_TRACE - 1:
            span.status.code = Status.STATUS_CODE_ERROR
    return to_rows(request, workspace="default", project="race").rows


def write_half(database_url: str, half: int, barrier: Any) -> None:
    """A process of its own: write one half of every trace (even or odd spans), trace by trace."""

    async def run() -> None:
        engine = create_engine(database_url)
        store = SpanStore(engine)
        barrier.wait()
        for number in range(TRACES):
            await store.add([row for index, row in enumerate(trace_rows(number)) if index % 2 == half])
        await engine.dispose()

    asyncio.run(run())


def test_two_processes_writing_halves_of_each_trace_lose_no_update(postgresql_url: str) -> None:
    async def prepare() -> None:
        engine = create_engine(postgresql_url)
        await migrate(engine, MIGRATIONS, "otel")
        await engine.dispose()

    asyncio.run(prepare())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    writers = [context.Process(target=write_half, args=(postgresql_url, half, barrier)) for half in (0, 1)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(240)
        assert writer.exitcode == 0

    async def read() -> list[dict[str, Any]]:
        engine = create_engine(postgresql_url)
        try:
            page, _ = await SpanStore(engine).list_traces(TraceFilter(), TRACES + 1, None)
        finally:
            await engine.dispose()
        return page

    stored = {row["trace_id"]: row for row in asyncio.run(read())}
    expected = {summary["trace_id"]: summary for number in range(TRACES) for summary in summarise(trace_rows(number))}
    assert len(stored) == TRACES
    wrong = [trace_id for trace_id, summary in expected.items() if {k: stored[trace_id][k] for k in summary} != summary]
    assert wrong == [], (
        f"{len(wrong)} of {TRACES} summaries differ from one writer's, e.g. {stored[wrong[0]]} != {expected[wrong[0]]}"
    )
    assert sum(1 for row in stored.values() if row["error_count"]) == TRACES // 2


def test_summary_of_a_trace_in_pieces_equals_the_summary_of_the_whole() -> None:
    """The merge rules (earliest start, latest end, root's name and service, counts) are what one pass gives."""
    rows = trace_rows(7)
    whole = summarise(rows)[0]
    assert (whole["root_name"], whole["service_name"], whole["span_count"], whole["error_count"]) == (
        "root",
        "svc-1",
        8,
        1,
    )
    assert whole["start_ns"] == min(row["start_ns"] for row in rows) and whole["end_ns"] == max(
        row["end_ns"] for row in rows
    )
    children_only = summarise(rows[1:])[0]
    assert children_only["root_name"] is None and children_only["span_count"] == 7
