"""Search by span attribute, span name, model and tokens; GenAI usage in summaries; the 0002 migration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy import func, insert, select

from core.database import create_engine, migrate
from core.testing import serve_in_thread
from plugins.otel import MIGRATIONS
from plugins.otel import store as store_module
from plugins.otel.decode import to_rows
from plugins.otel.span_writes import summarise
from plugins.otel.store import FEW_TRACES, SpanStore, TraceFilter
from plugins.otel.tables import SPAN_COLUMNS, spans, terms, terms_pending, traces

PROTOBUF = {"Content-Type": "application/x-protobuf"}
START = 1_700_000_000_000_000_000


def value(raw: Any) -> AnyValue:
    if isinstance(raw, bool):
        return AnyValue(bool_value=raw)
    if isinstance(raw, int):
        return AnyValue(int_value=raw)
    if isinstance(raw, float):
        return AnyValue(double_value=raw)
    return AnyValue(string_value=raw)


def request(
    number: int, service: str, spans_: list[tuple[str, dict[str, Any]]], *, first_span: int = 0
) -> ExportTraceServiceRequest:
    """Trace ``number``: spans (name, attributes), the first a root when ``first_span`` is 0."""
    made = ExportTraceServiceRequest()
    resource_spans = made.resource_spans.add()
    resource_spans.resource.attributes.append(KeyValue(key="service.name", value=value(service)))
    scope = resource_spans.scope_spans.add()
    for position, (name, attributes) in enumerate(spans_, start=first_span):
        span = scope.spans.add()
        span.trace_id = number.to_bytes(16, "big")
        span.span_id = (position + 1).to_bytes(8, "big")
        if position:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = name
        span.start_time_unix_nano = START + number * 10**9 + position
        span.end_time_unix_nano = START + number * 10**9 + 10**6
        span.attributes.extend(KeyValue(key=key, value=value(raw)) for key, raw in attributes.items())
    return made


def chat(model: str, input_tokens: int, output_tokens: int, **more: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        **more,
    }


AGENT = request(
    1,
    "agent",
    [
        # a session named on a span that is no LLM span (OpenInference's using_session sets every span's)
        ("GET /ask", {"http.method": "GET", "user.id": "u1", "retry": True, "ratio": 0.5, "session.id": "chat-7"}),
        # an agent span totalling its calls' tokens: not an LLM call, not counted again
        (
            "invoke_agent",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.usage.input_tokens": 150,
                "gen_ai.usage.output_tokens": 25,
            },
        ),
        ("chat gpt-4o", chat("gpt-4o", 100, 20, **{"gen_ai.response.model": "gpt-4o-2024-08-06"})),
        ("chat gpt-4o", chat("gpt-4o", 50, 5)),
    ],
)
CLAUDE = request(
    2,
    "bot",
    [
        ("POST /answer", {"http.method": "POST", "user.id": "u2"}),
        ("chat", chat("claude-x", 10, 2, **{"gen_ai.conversation.id": "conv-2"})),
    ],
)
PLAIN = request(3, "api", [("GET /health", {"http.method": "GET", "http.status_code": 500})])

SEARCHES: tuple[tuple[TraceFilter, list[int]], ...] = (
    (TraceFilter(attributes=(("http.method", "GET"),)), [3, 1]),
    (TraceFilter(attributes=(("retry", "true"), ("ratio", "0.5"))), [1]),
    (TraceFilter(attributes=(("user.id", "nobody"),)), []),
    (TraceFilter(span_name="chat"), [2]),
    (TraceFilter(service="agent", attributes=(("http.method", "GET"),)), [1]),
    (TraceFilter(service="api"), [3]),
)
"""Filters of the store's list, each with the numbers of the three traces above it finds, newest first."""


@pytest.fixture
def base(make_app: Any, database_url: str) -> Iterator[str]:
    with serve_in_thread(make_app(["otel"], {"database_url": database_url})) as url:
        store_the_three_traces(url)
        yield url


@pytest.fixture(scope="module")
def searched(module_make_app: Any, module_database_url: str) -> Iterator[str]:
    """One live server per store holding the three traces, shared by this module's tests that only search."""
    with serve_in_thread(module_make_app(["otel"], {"database_url": module_database_url})) as url:
        store_the_three_traces(url)
        yield url


def store_the_three_traces(url: str) -> None:
    for made in (AGENT, CLAUDE, PLAIN):
        httpx.post(f"{url}/v1/traces", content=made.SerializeToString(), headers=PROTOBUF).raise_for_status()


def numbers(base: str, **params: Any) -> list[int]:
    response = httpx.get(f"{base}/api/otel/traces", params=params)
    assert response.status_code == 200, response.text
    return [int(trace["trace_id"], 16) for trace in response.json()["traces"]]


def test_summaries_carry_llm_calls_and_tokens(searched: str) -> None:
    base = searched
    listed = {int(t["trace_id"], 16): t for t in httpx.get(f"{base}/api/otel/traces").json()["traces"]}
    assert {k: listed[1][k] for k in ("llm_calls", "input_tokens", "output_tokens")} == {
        "llm_calls": 2,
        "input_tokens": 150,
        "output_tokens": 25,
    }
    assert (listed[2]["llm_calls"], listed[2]["input_tokens"], listed[2]["output_tokens"]) == (1, 10, 2)
    assert (listed[3]["llm_calls"], listed[3]["input_tokens"]) == (0, 0)


@pytest.mark.parametrize("few_traces", [FEW_TRACES, 1], ids=["terms-read-first", "terms-checked-per-trace"])
def test_filters_by_attribute_name_model_and_tokens_combined(
    searched: str, few_traces: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same traces whether a term's traces are read first (a rare term) or each trace is checked (SQLite's two
    ways to filter by a term; PostgreSQL's planner chooses for itself)."""
    monkeypatch.setattr(store_module, "FEW_TRACES", few_traces)
    base = searched
    assert numbers(base, **{"attr.http.method": "GET"}) == [3, 1]
    assert numbers(base, **{"attr.http.status_code": "500"}) == [3]  # an int attribute, compared as text
    assert numbers(base, **{"attr.retry": "true", "attr.ratio": "0.5"}) == [1]
    assert numbers(base, **{"attr.user.id": "u2"}) == [2]
    assert numbers(base, **{"attr.user.id": "nobody"}) == []
    assert numbers(base, name="chat gpt-4o") == [1]
    assert numbers(base, name="chat") == [2]
    assert numbers(base, model="gpt-4o") == [1]
    assert numbers(base, model="gpt-4o-2024-08-06") == [1]  # the response model counts too
    assert numbers(base, model="claude-x") == [2]
    assert numbers(base, min_tokens=100) == [1]
    assert numbers(base, min_tokens=12) == [2, 1]
    assert numbers(base, min_tokens=0) == [3, 2, 1]
    assert numbers(base, model="claude-x", **{"attr.http.method": "GET"}) == []
    assert numbers(base, service="agent", **{"attr.http.method": "GET"}) == [1]
    assert numbers(base, service="api") == [3]
    assert numbers(base, status="ok", min_tokens=1, limit=1) == [2]


@pytest.mark.parametrize(
    "params, says",
    [
        ({"attr.": "x"}, "key is missing"),
        ({"attr.k": "v" * 300}, "not indexed"),
        ({"model": "a\0b"}, "model"),
        ({"min_tokens": "-1"}, "min_tokens"),
    ],
)
def test_bad_search_parameters_get_400(searched: str, params: dict[str, str], says: str) -> None:
    response = httpx.get(f"{searched}/api/otel/traces", params=params)
    assert response.status_code == 400 and says in response.json()["detail"]


def test_a_call_traced_on_both_sides_counts_once(base: str) -> None:
    """A gateway's SERVER span and its CLIENT span to the provider both carry the chat and its usage."""
    made = request(10, "gateway", [("chat resilient", chat("resilient", 5, 3)), ("chat echo-1", chat("echo-1", 5, 3))])
    made.resource_spans[0].scope_spans[0].spans[0].kind = Span.SPAN_KIND_SERVER
    made.resource_spans[0].scope_spans[0].spans[1].kind = Span.SPAN_KIND_CLIENT
    httpx.post(f"{base}/v1/traces", content=made.SerializeToString(), headers=PROTOBUF).raise_for_status()
    found = httpx.get(f"{base}/api/otel/traces/{(10).to_bytes(16, 'big').hex()}").json()
    assert (found["llm_calls"], found["input_tokens"], found["output_tokens"]) == (1, 5, 3)


def test_a_trace_arriving_in_pieces_is_found_by_what_any_piece_has(base: str) -> None:
    httpx.post(
        f"{base}/v1/traces",
        content=request(9, "late", [("retry call", chat("gpt-4o", 7, 3))], first_span=5).SerializeToString(),
        headers=PROTOBUF,
    )
    httpx.post(
        f"{base}/v1/traces",
        content=request(9, "late", [("root", {"tenant": "acme"})]).SerializeToString(),
        headers=PROTOBUF,
    )
    assert numbers(base, model="gpt-4o", **{"attr.tenant": "acme"}) == [9]
    found = httpx.get(f"{base}/api/otel/traces", params={"attr.tenant": "acme"}).json()["traces"][0]
    assert (found["root_name"], found["llm_calls"], found["input_tokens"], found["output_tokens"]) == ("root", 1, 7, 3)
    trace_id = found["trace_id"]
    assert httpx.delete(f"{base}/api/otel/traces/{trace_id}").status_code == 204
    assert numbers(base, **{"attr.tenant": "acme"}) == []


def test_migrating_a_populated_database_keeps_everything_and_backfills(database_url: str) -> None:
    """Create the 0001 schema, store traces the way 0001 did, upgrade: nothing lost, new filters work,
    each trace costs what ingest prices it at (0007's backfill) and has its session (read from its terms by 0008)."""

    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            await migrate(engine, MIGRATIONS, "otel", revision="0001")
            rows = [
                row for made in (AGENT, CLAUDE, PLAIN) for row in to_rows(made, workspace="default", project="p").rows
            ]
            old_summaries = [
                {
                    key: value
                    for key, value in summary.items()
                    if key not in ("llm_calls", "input_tokens", "output_tokens", "cost_usd", "session_id")
                }
                for summary in summarise(rows)
            ]
            async with engine.begin() as connection:
                await connection.execute(insert(spans), [{name: row[name] for name in SPAN_COLUMNS} for row in rows])
                await connection.execute(insert(traces), old_summaries)  # only the 0001 columns
            await migrate(engine, MIGRATIONS, "otel")
            async with engine.connect() as connection:
                assert (await connection.execute(select(func.count()).select_from(spans))).scalar() == len(rows)
                stored = {row.trace_id: dict(row._mapping) for row in await connection.execute(select(traces))}
                assert (await connection.execute(select(func.count()).select_from(terms))).scalar_one() > 0
            for summary in summarise(rows):
                assert stored[summary["trace_id"]] == summary
            store = SpanStore(engine)
            found, _ = await store.list_traces(TraceFilter(model="gpt-4o", attributes=(("user.id", "u1"),)), 10, None)
            assert [row["trace_id"] for row in found] == [f"{1:032x}"]
            found, _ = await store.list_traces(TraceFilter(min_tokens=12, span_name="chat"), 10, None)
            assert [row["trace_id"] for row in found] == [f"{2:032x}"]
            assert {row["trace_id"]: row["session_id"] for row in stored.values()} == {
                f"{1:032x}": "chat-7",
                f"{2:032x}": "conv-2",
                f"{3:032x}": None,
            }
            found, _ = await store.list_traces(TraceFilter(session="conv-2"), 10, None)
            assert [row["trace_id"] for row in found] == [f"{2:032x}"]
        finally:
            await engine.dispose()

    asyncio.run(scenario())


MLFLOW = request(
    12,
    "mlflow-app",
    [
        (
            "ChatModel",
            {
                "mlflow.spanType": '"CHAT_MODEL"',
                "mlflow.llm.model": '"claude-x"',
                "mlflow.chat.tokenUsage": '{"input_tokens": 4, "output_tokens": 2}',
            },
        )
    ],
)
NESTED = request(13, "gateway", [("chat resilient", chat("resilient", 5, 3)), ("chat echo-1", chat("echo-1", 5, 3))])
NESTED.resource_spans[0].scope_spans[0].spans[0].kind = Span.SPAN_KIND_SERVER  # the gateway's span, its attempt below


def test_migrating_a_populated_0002_database_counts_calls_once_and_reads_every_convention(database_url: str) -> None:
    """Spans stored under 0002 (which counted a call traced at two levels twice, and read no MLflow span): after
    0003, each call counts once, MLflow's call counts, and model and ``attr.mlflow.*`` searches find them."""

    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            await migrate(engine, MIGRATIONS, "otel", revision="0002")
            rows = [
                row for made in (AGENT, MLFLOW, NESTED) for row in to_rows(made, workspace="default", project="p").rows
            ]
            async with engine.begin() as connection:
                await connection.execute(insert(spans), [{name: row[name] for name in SPAN_COLUMNS} for row in rows])
                await connection.execute(
                    insert(traces),
                    [  # the 0002 columns (cost_usd came with 0007, session_id with 0008)
                        {key: value for key, value in summary.items() if key not in ("cost_usd", "session_id")}
                        | {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0}
                        for summary in summarise(rows)
                    ],
                )
            await migrate(engine, MIGRATIONS, "otel")
            async with engine.connect() as connection:
                stored = {
                    int(row.trace_id, 16): (row.llm_calls, row.input_tokens, row.output_tokens)
                    for row in await connection.execute(select(traces))
                }
            assert stored == {1: (2, 150, 25), 12: (1, 4, 2), 13: (1, 5, 3)}
            store = SpanStore(engine)
            for where, expected in (
                (TraceFilter(model="claude-x"), [12]),
                (TraceFilter(model="echo-1"), [13]),
                (TraceFilter(attributes=(("mlflow.llm.model", "claude-x"),)), [12]),
            ):
                found, _ = await store.list_traces(where, 10, None)
                assert [int(row["trace_id"], 16) for row in found] == expected, where
            called = await store.stored_calls("default", f"{13:032x}")
            assert {span_id: call.counted for span_id, call in called.items()} == {
                f"{1:016x}": False,
                f"{2:016x}": True,
            }
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_migrating_0008_terms_to_the_trace_key_keeps_every_term_searchable(database_url: str) -> None:
    """Terms stored under 0008's key (by term first) are all there after 0009 (by trace first), every filter
    finds the same traces, a trace's terms sent again are not doubled, and a deleted trace takes its terms along."""

    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            await migrate(engine, MIGRATIONS, "otel", revision="0008")
            async with engine.begin() as connection:  # today's writer puts terms there first (0010)...
                await connection.run_sync(terms_pending.create)
            async with SpanStore(engine) as store:
                for made in (AGENT, CLAUDE, PLAIN):
                    await store.add(to_rows(made, workspace="default", project="p").rows)
            async with engine.begin() as connection:  # ... and indexed them on closing, under 0008's key
                await connection.run_sync(terms_pending.drop)
                before = set((await connection.execute(select(terms))).all())
            assert len(before) > 20
            await migrate(engine, MIGRATIONS, "otel")
            store = SpanStore(engine)
            async with engine.connect() as connection:
                assert set((await connection.execute(select(terms))).all()) == before
            for where, expected in SEARCHES:
                found, _ = await store.list_traces(where, 10, None)
                assert [int(row["trace_id"], 16) for row in found] == expected, where
            await store.add(to_rows(AGENT, workspace="default", project="p").rows)  # already stored: no new term
            await store.add(
                to_rows(
                    request(1, "agent", [("late", {"tenant": "acme"})], first_span=9), workspace="default", project="p"
                ).rows
            )
            found, _ = await store.list_traces(
                TraceFilter(attributes=(("tenant", "acme"), ("user.id", "u1"))), 10, None
            )
            assert [int(row["trace_id"], 16) for row in found] == [1]
            assert await store.delete_trace(f"{1:032x}")
            async with engine.connect() as connection:
                left = set((await connection.execute(select(terms))).all())
            assert left == {row for row in before if row.trace_id != f"{1:032x}"}
        finally:
            await engine.dispose()

    asyncio.run(scenario())
