"""Limits: query parameters out of range, deep JSON, decompression under a global budget, huge traces streamed."""

from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import json
import random
import sqlite3
import types
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from sqlalchemy.exc import OperationalError

from core.testing import serve_in_thread
from plugins.otel.budget import BudgetExhausted, DecompressionBudget
from plugins.otel.decode import PayloadError, decode_request, decompress, most_inflated, stated_size
from plugins.otel.ingest import LARGE_REQUEST_BYTES
from plugins.otel.present import otlp_key_value, span_view
from plugins.otel.store import SpanStore

from .test_isolation import PROTOBUF, make_request


@pytest.fixture
def serve(make_app: Any, sqlite_url: str) -> Any:
    """``serve(**otel_settings)``: a live server on SQLite, for limits checked before anything is stored."""

    def start(**settings: Any) -> Any:
        return serve_in_thread(make_app(["otel"], {"database_url": sqlite_url, "otel": settings}))

    return start


@pytest.fixture
def base(serve: Any) -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def base_on_each_store(make_app: Any, database_url: str) -> Iterator[str]:
    """A live server on SQLite, then on PostgreSQL: for values that reach the store's own limits."""
    with serve_in_thread(make_app(["otel"], {"database_url": database_url})) as url:
        yield url


@pytest.fixture(scope="module")
def shared_base(module_make_app: Any) -> Iterator[str]:
    """One live server on SQLite for this module's input checks: each refuses a request, and the
    traces they store first are the same three each time (stored once)."""
    with serve_in_thread(module_make_app(["otel"])) as url:
        yield url


@pytest.mark.parametrize(
    "params, names",
    [
        ({"min_duration_ms": "1e300"}, "min_duration_ms"),
        ({"min_duration_ms": "inf"}, "min_duration_ms"),
        ({"min_duration_ms": "nan"}, "min_duration_ms"),
        ({"min_duration_ms": "-1"}, "min_duration_ms"),
        ({"start_after": "9999-12-31T00:00:00Z"}, "start_after"),
        ({"start_before": "0001-01-01T00:00:00Z"}, "start_before"),
        ({"page_token": base64.urlsafe_b64encode(b"99999999999999999999999:" + b"a" * 32).decode()}, "page_token"),
        ({"page_token": base64.urlsafe_b64encode(b"5:zz").decode()}, "page_token"),
        ({"page_token": "\u00e9t\u00e9"}, "page_token"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": str(10**30)}, "limit"),
    ],
)
def test_query_parameters_out_of_range_get_400_naming_them(
    shared_base: str, params: dict[str, str], names: str
) -> None:
    base = shared_base
    httpx.post(
        f"{base}/v1/traces", content=make_request(range(3)).SerializeToString(), headers=PROTOBUF
    ).raise_for_status()
    response = httpx.get(f"{base}/api/otel/traces", params=params)
    assert response.status_code == 400, response.text
    assert names in response.json()["detail"]


def test_extreme_but_valid_moments_are_accepted(base_on_each_store: str) -> None:
    base = base_on_each_store
    httpx.post(
        f"{base}/v1/traces", content=make_request(range(3)).SerializeToString(), headers=PROTOBUF
    ).raise_for_status()
    assert (
        len(httpx.get(f"{base}/api/otel/traces", params={"start_after": "1970-01-01T00:00:00"}).json()["traces"]) == 3
    )
    assert (
        httpx.get(f"{base}/api/otel/traces", params={"start_after": "2262-01-01T00:00:00+00:00"}).json()["traces"] == []
    )


def test_the_largest_accepted_min_duration_is_a_200_not_a_500(base_on_each_store: str) -> None:
    base = base_on_each_store
    largest = httpx.get(
        f"{base}/api/otel/traces", params={"min_duration_ms": "9223372036854.775"}
    )  # * 1e6 rounds past INT64_MAX
    assert largest.status_code == 200, largest.text
    assert largest.json()["traces"] == []


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"resourceSpans": ' + b"[" * 100_000, b'{"a":' * 50_000],
    ids=["arrays", "in-field", "objects"],
)
def test_deeply_nested_json_gets_400(shared_base: str, body: bytes) -> None:
    response = httpx.post(f"{shared_base}/v1/traces", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "deeper than 64 levels" in response.json()["message"]  # a google.rpc.Status, as OTLP clients expect


def test_the_decompression_budget_queues_then_refuses() -> None:
    async def scenario() -> None:
        budget = DecompressionBudget(total_bytes=100, wait_seconds=0.05)
        order: list[str] = []
        async with budget.hold(60):
            with pytest.raises(BudgetExhausted):
                async with budget.hold(60):
                    pass
            async with budget.hold(40):  # what fits goes ahead
                order.append("fits")

            async def queued() -> None:
                async with DecompressionBudget.hold(budget, 60):
                    order.append("queued ran")

            budget.wait_seconds = 5
            waiting = asyncio.create_task(queued())
            await asyncio.sleep(0)
            order.append("released")
        await waiting
        assert order == ["fits", "released", "queued ran"]

    asyncio.run(scenario())


def test_a_burst_of_gzip_bombs_gets_only_413_or_503_and_the_server_serves_after(serve: Any) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    with serve(
        max_decompressed_bytes=4 * 1024 * 1024, decompression_budget_bytes=8 * 1024 * 1024, decompression_wait_seconds=0
    ) as url:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=16)) as client:
                headers = {**PROTOBUF, "Content-Encoding": "gzip"}
                return list(
                    await asyncio.gather(*(client.post("/v1/traces", content=bomb, headers=headers) for _ in range(32)))
                )

        responses = asyncio.run(burst())
        assert {r.status_code for r in responses} <= {413, 503}
        assert 413 in {r.status_code for r in responses}
        for response in responses:
            message = status_pb2.Status.FromString(response.content).message
            if response.status_code == 503:
                assert response.headers["retry-after"] and "PLUGHOST_OTEL_DECOMPRESSION_BUDGET_BYTES" in message
        body = gzip.compress(make_request(range(2)).SerializeToString())
        assert (
            httpx.post(f"{url}/v1/traces", content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"}).status_code
            == 200
        )


def test_a_huge_trace_is_streamed_whole_and_exact(base: str) -> None:
    request = make_request(range(1), spans_per_trace=450)
    big = request.resource_spans[0].scope_spans[0].spans[1]
    big.attributes.extend(
        KeyValue(key=f"k{i}", value=AnyValue(int_value=i) if i % 2 else AnyValue(string_value=f"v{i}"))
        for i in range(60_000)
    )
    response = httpx.post(f"{base}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF, timeout=60)
    assert response.status_code == 200
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    with httpx.stream("GET", f"{base}/api/otel/traces/{trace_id}", timeout=60) as streamed:
        assert streamed.status_code == 200 and "content-length" not in streamed.headers
        chunks = list(streamed.iter_raw())
    assert len(chunks) > 3
    trace = json.loads(b"".join(chunks))
    assert len(trace["spans"]) == 450 and trace["span_count"] == 450
    spans = {span["span_id"]: span for span in trace["spans"]}
    stored = spans[big.span_id.hex()]
    assert (
        len(stored["attributes"]) == 60_000 and stored["attributes"]["k7"] == 7 and stored["attributes"]["k8"] == "v8"
    )
    expected = span_view(
        {
            "span": big.SerializeToString(),
            "resource": b"",
            "scope": b"",
            "trace_id": trace_id,
            "span_id": big.span_id.hex(),
            "parent_span_id": big.parent_span_id.hex(),
            "service_name": "svc",
            "resource_schema_url": "",
            "scope_schema_url": "",
        }
    )
    assert stored["otlp"]["span"] == expected["otlp"]["span"]
    assert len(trace["tree"]) == 1 and len(trace["tree"][0]["children"]) == 449


def test_otlp_attributes_are_written_as_protobuf_json_writes_them() -> None:
    document = {
        "attributes": [
            {"key": "s", "value": {"stringValue": "x"}},
            {"key": "i", "value": {"intValue": "-9007199254740993"}},
            {"key": "b", "value": {"boolValue": False}},
            {"key": "d", "value": {"doubleValue": 0.25}},
            {"key": "nan", "value": {"doubleValue": "NaN"}},
            {"key": "inf", "value": {"doubleValue": "-Infinity"}},
            {"key": "bytes", "value": {"bytesValue": base64.b64encode(b"\0\1").decode()}},
            {"key": "array", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}, {}]}}},
            {"key": "empty", "value": {"arrayValue": {}}},
            {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"boolValue": True}}]}}},
            {"key": "unset", "value": {}},
        ]
    }
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    json_format.ParseDict(document, span)
    for pair in span.attributes:
        assert otlp_key_value(pair) == json_format.MessageToDict(pair)


def test_a_refused_body_leaves_no_inflated_copy_alive_in_the_error() -> None:
    """The 413's traceback used to hold the 32 MiB inflated buffer until the GC ran: 2.9 GiB after a burst."""
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(PayloadError) as caught:
        decode_request(
            bomb, content_type="application/x-protobuf", encoding="gzip", limit=1024 * 1024, workspace="w", project="p"
        )
    assert caught.value.status == 413
    traceback, held = caught.value.__traceback__, []
    while traceback is not None:
        held += [
            name
            for name, value in traceback.tb_frame.f_locals.items()
            if isinstance(value, (bytes, bytearray)) and len(value) > 1024 * 1024
        ]
        traceback = traceback.tb_next
    assert held == []


def test_a_refused_request_leaves_no_reference_cycle_holding_its_body(serve: Any) -> None:
    """Refusals used to leave their handler's frame in a cycle with the error: each held its body
    until a full collection, +50 MiB of RSS 10 s after a burst of bombs."""
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        with serve(max_decompressed_bytes=1024 * 1024) as url:
            answer = httpx.post(f"{url}/v1/traces", content=bomb, headers={**PROTOBUF, "content-encoding": "gzip"})
            assert answer.status_code == 413
            gc.collect()
            frames = [
                item.f_code.co_name
                for item in gc.garbage
                if type(item) is types.FrameType and item.f_code.co_filename.endswith("router.py")
            ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert frames == []


def test_a_truncated_gzip_body_gets_400() -> None:
    body = gzip.compress(make_request(range(50)).SerializeToString())
    with pytest.raises(PayloadError, match="truncated"):
        decode_request(
            body[: len(body) // 2],
            content_type="application/x-protobuf",
            encoding="gzip",
            limit=1 << 20,
            workspace="w",
            project="p",
        )


def test_a_body_is_sized_by_what_it_states_it_inflates_to() -> None:
    payload = make_request(range(50)).SerializeToString()
    assert stated_size(gzip.compress(payload), "gzip", 1 << 30) == len(payload)
    assert stated_size(gzip.compress(payload), " GZIP", 100) == 100  # capped at the limit
    assert stated_size(zlib.compress(payload), "deflate", 1 << 30) == most_inflated(
        len(zlib.compress(payload)), 1 << 30
    )
    assert stated_size(payload, "", 1 << 30) == stated_size(payload, "identity", 1 << 30) == len(payload)
    assert stated_size(b"\x1f\x8b", "gzip", 1 << 30) == 2  # too short to state anything: decoding refuses it


def test_a_small_gzip_body_of_many_attributes_is_decoded_as_bulk_work(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """170 KiB of gzip can carry a million attributes: such a request pauses the GC and its rows are freed
    off the event loop, decided on its inflated size, not its size on the wire."""
    emptied: list[tuple[int, bool]] = []

    def empty_recording(rows: list[Any]) -> None:
        emptied.append((len(rows), gc.isenabled()))
        rows.clear()

    monkeypatch.setattr("plugins.otel.ingest.empty_rows", empty_recording)
    request = make_request(range(1), spans_per_trace=200)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.extend(
            KeyValue(key=f"attribute.{i}", value=AnyValue(string_value=f"value-{i}")) for i in range(100)
        )
    payload = request.SerializeToString()
    body = gzip.compress(payload)
    assert len(body) < LARGE_REQUEST_BYTES <= len(payload)
    response = httpx.post(f"{base}/v1/traces", content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert emptied == [(200, False)]  # all its rows, while the GC is still paused
    assert gc.isenabled()
    small = gzip.compress(make_request(range(3)).SerializeToString())
    assert (
        httpx.post(f"{base}/v1/traces", content=small, headers={**PROTOBUF, "Content-Encoding": "gzip"}).status_code
        == 200
    )
    assert len(emptied) == 1  # a small request's rows are freed where they are


def test_a_large_request_that_could_not_be_stored_is_freed_as_bulk_work_too(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 (the store failed) frees the rows as a 200 does: off the event loop, while the GC is paused."""
    emptied: list[tuple[int, bool]] = []

    def empty_recording(rows: list[Any]) -> None:
        emptied.append((len(rows), gc.isenabled()))
        rows.clear()

    async def failing_add(self: SpanStore, rows: list[dict[str, Any]]) -> Any:
        raise OperationalError("INSERT INTO plughost_otel_spans", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr("plugins.otel.ingest.empty_rows", empty_recording)
    monkeypatch.setattr(SpanStore, "add", failing_add)
    request = make_request(range(1), spans_per_trace=200)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.extend(
            KeyValue(key=f"attribute.{i}", value=AnyValue(string_value=f"value-{i}")) for i in range(100)
        )
    assert len(request.SerializeToString()) >= LARGE_REQUEST_BYTES
    with serve() as url:
        response = httpx.post(f"{url}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 503 and response.headers["retry-after"]
    assert emptied == [(200, False)]


def _rows(body: bytes, limit: int = 1 << 20) -> int:
    _, decoded = decode_request(
        body, content_type="application/x-protobuf", encoding="gzip", limit=limit, workspace="w", project="p"
    )
    return len(decoded.rows)


@pytest.mark.parametrize("first_inflated", [1 << 10, 3 << 20], ids=["small", "over an inflate piece"])
@pytest.mark.parametrize("second_bytes", [100, 40_000, 200_000], ids=["short", "same input piece", "long"])
def test_every_gzip_member_is_inflated_wherever_it_starts(first_inflated: int, second_bytes: int) -> None:
    """Members of every size, starting inside or across the 64 KiB input pieces, inflate as gzip.decompress does."""
    first = gzip.compress(bytes(first_inflated))
    second = gzip.compress(random.Random(second_bytes).randbytes(second_bytes), compresslevel=1)
    body = first + second + gzip.compress(b"end")
    assert decompress(body, "gzip", 64 << 20) == gzip.decompress(body)


def test_a_gzip_body_of_several_members_is_decoded_whole() -> None:
    first, second = make_request(range(0, 2)).SerializeToString(), make_request(range(2, 5)).SerializeToString()
    assert _rows(gzip.compress(first) + gzip.compress(second)) == 10  # 5 traces of 2 spans: none dropped


@pytest.mark.parametrize(
    "after, status, problem",
    [
        (b"not gzip", 400, "not valid gzip"),
        (gzip.compress(b"x" * 100)[:-3], 400, "truncated"),
        (gzip.compress(b"x" * 1000), 413, "inflates past"),
    ],
    ids=["garbage", "truncated member", "members over the limit"],
)
def test_what_follows_a_gzip_member_is_checked_like_the_first(after: bytes, status: int, problem: str) -> None:
    member = make_request(range(2)).SerializeToString()
    with pytest.raises(PayloadError, match=problem) as refused:
        _rows(gzip.compress(member) + after, limit=len(member) + 500)
    assert refused.value.status == status


@pytest.mark.parametrize("value", ["0.5", "17", "1e9"])
def test_a_number_is_not_a_moment(base: str, value: str) -> None:
    """schemathesis: ``start_before=0.5`` was read as half a second after 1970 and accepted."""
    for name in ("start_before", "start_after"):
        response = httpx.get(f"{base}/api/otel/traces", params={name: value})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", name]
        assert "ISO 8601" in response.json()["detail"][0]["msg"]
