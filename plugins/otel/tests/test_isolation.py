"""One span the database cannot store is rejected alone: never a 500 or 503, never another client's failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import func, select

from core.database import create_engine, migrate
from core.testing import serve_in_thread
from plugins.otel import MIGRATIONS
from plugins.otel.decode import to_rows
from plugins.otel.sqlite_writer import SqliteTransaction
from plugins.otel.store import SpanStore, TraceFilter
from plugins.otel.tables import spans

PROTOBUF = {"Content-Type": "application/x-protobuf"}
START = 1_700_000_000_000_000_000


def make_request(
    trace_numbers: range, *, spans_per_trace: int = 2, name: str = "op", service: str = "svc"
) -> ExportTraceServiceRequest:
    """Traces numbered as given: a root and children, ids derived from the numbers."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", service
    scope_spans = resource_spans.scope_spans.add()
    for number in trace_numbers:
        for position in range(spans_per_trace):
            span = scope_spans.spans.add()
            span.trace_id = (number + 1).to_bytes(16, "big")
            span.span_id = ((number + 1) * 1000 + position + 1).to_bytes(8, "big")
            if position:
                span.parent_span_id = ((number + 1) * 1000 + 1).to_bytes(8, "big")
            span.name = name if position == 0 else f"{name}-child"
            span.start_time_unix_nano = START + number * 10**9 + position
            span.end_time_unix_nano = START + number * 10**9 + 10**6
    return request


@pytest.fixture
def base(make_app: Any, database_url: str) -> Iterator[str]:
    with serve_in_thread(make_app(["otel"], {"database_url": database_url})) as url:
        yield url


def listed(base: str) -> list[dict[str, Any]]:
    return httpx.get(f"{base}/api/otel/traces", params={"limit": 1000}).json()["traces"]


@pytest.mark.parametrize(
    "spoil, says",
    [
        (lambda span, resource: setattr(span, "name", "bad\0name"), "NUL"),
        (lambda span, resource: resource.attributes[0].value.__setattr__("string_value", "svc\0"), "NUL"),
        (lambda span, resource: setattr(span, "end_time_unix_nano", 2**64 - 1), "cannot be stored"),
        (
            lambda span, resource: (
                setattr(span, "start_time_unix_nano", 2**63),
                setattr(span, "end_time_unix_nano", 2**63),
            ),
            "cannot be stored",
        ),
    ],
    ids=["nul-in-name", "nul-in-service", "end-past-int64", "both-past-int64"],
)
def test_an_unstorable_span_is_rejected_alone_in_partial_success(base: str, spoil: Any, says: str) -> None:
    good = make_request(range(0, 3))
    bad_resource = make_request(range(3, 4))
    spoil(bad_resource.resource_spans[0].scope_spans[0].spans[0], bad_resource.resource_spans[0].resource)
    good.resource_spans.extend(bad_resource.resource_spans)
    response = httpx.post(f"{base}/v1/traces", content=good.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200, response.content
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans in (1, 2)  # the span, or its whole resource when the resource is bad
    assert says in answer.partial_success.error_message
    assert sorted(t["trace_id"][-1] for t in listed(base) if t["span_count"] == 2)[:3] == ["1", "2", "3"]


async def _post_all(base: str, bodies: list[bytes]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        return list(
            await asyncio.gather(*(client.post("/v1/traces", content=body, headers=PROTOBUF) for body in bodies))
        )


def test_bad_requests_mixed_into_a_burst_never_fail_the_good_ones(base: str) -> None:
    good = [make_request(range(i * 3, i * 3 + 3)).SerializeToString() for i in range(60)]
    bad = []
    for i in range(15):
        request = make_request(range(10_000 + i, 10_001 + i))
        request.resource_spans[0].scope_spans[0].spans[0].name = "nul\0here"
        bad.append(request.SerializeToString())
    bodies = [body for pair in zip(good, bad + [None] * len(good), strict=False) for body in pair if body is not None]
    responses = asyncio.run(_post_all(base, bodies))
    by_body = dict(zip(bodies, responses, strict=True))
    for body in good:
        response = by_body[body]
        assert response.status_code == 200, response.content
        assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    for body in bad:
        response = by_body[body]
        assert response.status_code == 200
        assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 1
    traces = listed(base)
    assert len([t for t in traces if t["span_count"] == 2]) == 180  # every good trace, whole
    assert len(traces) == 180 + 15  # the bad traces' storable children are kept


def test_a_request_with_more_traces_than_postgresql_bind_parameters(base: str) -> None:
    request = make_request(range(33_000), spans_per_trace=1)
    response = httpx.post(f"{base}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF, timeout=120)
    assert response.status_code == 200, response.content
    assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    count, token = 0, None
    while True:
        page = httpx.get(
            f"{base}/api/otel/traces", params={"limit": 1000, **({"page_token": token} if token else {})}
        ).json()
        count += len(page["traces"])
        if (token := page["next_page_token"]) is None:
            break
    assert count == 33_000


@asynccontextmanager
async def span_store(database_url: str) -> AsyncIterator[SpanStore]:
    engine = create_engine(database_url)
    try:
        await migrate(engine, MIGRATIONS, "otel")
        yield SpanStore(engine)
    finally:
        await engine.dispose()


def test_a_span_the_store_refuses_is_isolated_from_its_commit_group(database_url: str) -> None:
    """Past the decoder's checks (rows made by hand): the group is retried without the culprit."""

    async def scenario() -> None:
        async with span_store(database_url) as store:
            good = [
                to_rows(make_request(range(i * 10, i * 10 + 10)), workspace="default", project="p").rows
                for i in range(4)
            ]
            bad = to_rows(make_request(range(100, 102)), workspace="default", project="p").rows
            bad[1]["start_ns"] = 2**63  # no store holds it: SQLite raises OverflowError, PostgreSQL a DataError
            on_postgresql = database_url.startswith("postgresql")
            if on_postgresql:
                bad[3]["name"] = "nul\0"  # PostgreSQL text cannot hold NUL (SQLite can)
            results = await asyncio.gather(
                store.add(good[0]), store.add(bad), store.add(good[1]), store.add(good[2]), store.add(good[3])
            )
            assert [r.rejected for r in results] == [0, 1 + on_postgresql, 0, 0, 0]
            assert all("the store refused it" in reason for reason in results[1].reasons)
            page, _ = await store.list_traces(TraceFilter(), 1000, None)
            spans_by_trace = {row["trace_id"]: row["span_count"] for row in page}
            assert len(spans_by_trace) == 42
            assert spans_by_trace[f"{101:032x}"] == 1 and spans_by_trace[f"{102:032x}"] == 2 - on_postgresql

    asyncio.run(scenario())


def test_a_write_that_fails_after_its_spans_leaves_none_of_them(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a SQLite file the spans go in under a savepoint of the write's transaction (see ``sqlite_writer``): a
    failure later in that transaction takes them back with the rest; nothing is half stored."""

    def refuse(*args: Any) -> list[tuple[str, str]]:
        raise RuntimeError("the summaries' upsert failed")

    async def scenario() -> int:
        async with span_store(sqlite_url) as store:
            monkeypatch.setattr(SqliteTransaction, "merge_summaries", refuse)
            with pytest.raises(RuntimeError, match="upsert failed"):
                await store.add(to_rows(make_request(range(10)), workspace="default", project="p").rows)
            async with store.engine.connect() as connection:
                return (await connection.execute(select(func.count()).select_from(spans))).scalar_one()

    assert asyncio.run(scenario()) == 0
