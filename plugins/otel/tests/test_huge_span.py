"""A span too big to parse whole, read a run of attributes at a time (see ``huge_span.py``): the same rows,
terms, facts and JSON as the whole parse, the same 400 for a damaged one, every attribute read back.

The thresholds are lowered so that a span of a few thousand attributes takes the huge span's path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from core.testing import serve_in_thread
from plugins.otel import decode, facts, huge_span, present, wire
from plugins.otel.decode import PROTOBUF, PayloadError, parse, rows_of, to_rows
from plugins.otel.present import spans_json

from .test_isolation import PROTOBUF as PROTOBUF_HEADERS
from .test_isolation import make_request

ATTRIBUTES = 3000
HUGE_SPAN_BYTES = 8 * 1024
RUN_BYTES = 2 * 1024


@pytest.fixture
def lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request walked in pieces, and a span over 8 KiB read in runs of about 2 KiB."""
    monkeypatch.setattr(decode, "PARSE_IN_PIECES_BYTES", 0)
    monkeypatch.setattr(decode, "PARSE_PIECE_BYTES", 4 * 1024)
    monkeypatch.setattr(huge_span, "HUGE_SPAN_BYTES", HUGE_SPAN_BYTES)
    monkeypatch.setattr(huge_span, "ATTRIBUTE_RUN_BYTES", RUN_BYTES)


def attribute_values(mlflow: bool) -> Iterator[KeyValue]:
    """Ints, strings, doubles, booleans, repeats, an unindexed array, and the keys LLM facts are read from
    (MLflow's JSON-encoded values when ``mlflow``)."""
    if mlflow:
        yield KeyValue(key="mlflow.spanType", value=AnyValue(string_value='"CHAT_MODEL"'))
        yield KeyValue(key="mlflow.llm.model", value=AnyValue(string_value='"gpt-4o"'))
        yield KeyValue(
            key="mlflow.chat.tokenUsage",
            value=AnyValue(string_value='{"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}'),
        )
    else:
        yield KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
        yield KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o"))
        yield KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=12))
        yield KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=5))
    for number in range(ATTRIBUTES):
        if number % 4 == 0:
            yield KeyValue(key=f"n{number}", value=AnyValue(int_value=number))
        elif number % 4 == 1:
            text = f'"text {number}"' if mlflow else f"text {number}"
            yield KeyValue(key=f"s{number}", value=AnyValue(string_value=text))
        elif number % 4 == 2:
            yield KeyValue(key=f"d{number % 40}", value=AnyValue(double_value=number / 8))  # keys repeat
        else:
            yield KeyValue(key="same", value=AnyValue(bool_value=True))  # one term, many times
    yield KeyValue(key="list", value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)])))


def request_with_huge_span(mlflow: bool = False) -> ExportTraceServiceRequest:
    """Two small traces' spans around one span of a few thousand attributes, and a second resource after it."""
    request = make_request(range(2))
    spans = request.resource_spans[0].scope_spans[0].spans
    huge = spans.add(trace_id=(7).to_bytes(16, "big"), span_id=(7).to_bytes(8, "big"), name="huge")
    huge.start_time_unix_nano, huge.end_time_unix_nano = spans[0].start_time_unix_nano, spans[0].end_time_unix_nano
    huge.attributes.extend(attribute_values(mlflow))
    huge.events.add(name="an event", time_unix_nano=huge.start_time_unix_nano)
    spans.add().CopyFrom(spans[1])
    spans[-1].span_id = (99).to_bytes(8, "big")
    request.resource_spans.add().CopyFrom(make_request(range(3, 4), service="other").resource_spans[0])
    assert len(huge.SerializeToString()) > HUGE_SPAN_BYTES
    return request


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their terms as a set: a span's terms have no order."""
    return [{**row, "terms": sorted(row["terms"])} for row in rows]


@pytest.mark.parametrize("mlflow", [False, True], ids=["gen_ai", "mlflow"])
def test_a_huge_span_makes_the_rows_of_the_whole_parse(lowered: None, mlflow: bool) -> None:
    payload = request_with_huge_span(mlflow).SerializeToString()
    whole = to_rows(parse(payload, PROTOBUF), workspace="w", project="p")
    by_runs = rows_of(payload, PROTOBUF, ExportTraceServiceRequest, to_rows, workspace="w", project="p")
    assert comparable(by_runs.rows) == comparable(whole.rows) and len(whole.rows) == 8
    huge = next(row for row in by_runs.rows if row["name"] == "huge")
    assert isinstance(huge["terms"], list) and len(huge["terms"]) == len(set(huge["terms"]))
    assert huge["llm_call"] and (huge["input_tokens"], huge["output_tokens"]) == (12, 5)
    assert ("s1", "text 1") in huge["terms"]  # an MLflow value's term is decoded, as the whole parse does


def test_a_huge_span_is_walked_in_runs_of_fresh_messages(lowered: None) -> None:
    payload = request_with_huge_span().SerializeToString()
    found = [split for _, split in wire.pieces(payload, 4 * 1024, (HUGE_SPAN_BYTES, 4 * 1024)) if split is not None]
    assert len(found) == 1
    runs = list(huge_span.attribute_runs(found[0]))
    assert len(runs) > 10 and sum(len(run) for run in runs) == ATTRIBUTES + 5
    assert Span.FromString(found[0].head).events[0].name == "an event"


def test_a_huge_span_is_copied_out_of_its_request_a_piece_at_a_time(
    lowered: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "COPY_BYTES", 1000)  # many pieces, the last one short
    request = request_with_huge_span()
    payload = bytearray(request.SerializeToString())  # as an inflated body is
    found = [split for _, split in wire.pieces(payload, 4 * 1024, (HUGE_SPAN_BYTES, 4 * 1024)) if split is not None]
    huge = next(span for span in request.resource_spans[0].scope_spans[0].spans if span.name == "huge")
    assert len(found) == 1 and found[0].record == huge.SerializeToString()
    assert len(found[0].record) > 10 * wire.COPY_BYTES


def test_many_attributes_of_a_span_parsed_whole_make_the_same_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    span = request_with_huge_span(mlflow=True).resource_spans[0].scope_spans[0].spans[4]
    few = facts.span_facts(span, "svc")
    monkeypatch.setattr(facts, "MANY_ATTRIBUTES", 100)
    many = facts.span_facts(span, "svc")
    assert isinstance(many.terms, list) and sorted(many.terms) == sorted(few.terms) and many.llm == few.llm


def damaged_in_a_run(payload: bytes) -> bytes:
    """``payload`` with one attribute key of the huge span no longer UTF-8 (its records still well formed)."""
    key = b"s2001"
    assert payload.count(key) == 1
    return payload.replace(key, b"s\xff001")


def bad_wire_type_in_the_huge_span(payload: bytes) -> bytes:
    """``payload`` with one attribute record of the huge span of wire type 7 (there is none): the walk stops."""
    tag = payload.index(b"\x0a\x05s2001") - 2
    assert payload[tag] == wire.ATTRIBUTE_TAG
    return payload[:tag] + bytes([wire.ATTRIBUTES << 3 | 7]) + payload[tag + 1 :]


def test_a_damaged_huge_span_gets_the_400_of_the_whole_parse(lowered: None) -> None:
    payload = damaged_in_a_run(request_with_huge_span().SerializeToString())
    for parsed in (
        lambda: to_rows(parse(payload, PROTOBUF), workspace="w", project="p"),
        lambda: rows_of(payload, PROTOBUF, ExportTraceServiceRequest, to_rows, workspace="w", project="p"),
    ):
        with pytest.raises(PayloadError) as refused:
            parsed()
        assert refused.value.status == 400
        assert str(refused.value).startswith(f"body is not a valid OTLP ExportTraceServiceRequest ({PROTOBUF})")


@pytest.fixture
def base(lowered: None, make_app: Any, sqlite_url: str) -> Iterator[str]:
    with serve_in_thread(make_app(["otel"], {"database_url": sqlite_url})) as url:
        yield url


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(damaged_in_a_run, id="not UTF-8 in a run"),
        pytest.param(lambda payload: bad_wire_type_in_the_huge_span(payload), id="a bad wire type"),
    ],
)
def test_a_damaged_huge_span_is_refused_and_nothing_is_stored(base: str, damage: Any) -> None:
    payload = damage(request_with_huge_span().SerializeToString())
    answer = httpx.post(f"{base}/v1/traces", content=payload, headers=PROTOBUF_HEADERS)
    assert answer.status_code == 400, answer.text
    for trace in (1, 7, 4):
        assert httpx.get(f"{base}/api/otel/traces/{trace:032x}").status_code == 404


def test_a_huge_span_is_read_back_with_every_attribute(base: str) -> None:
    request = request_with_huge_span(mlflow=True)
    sent = request.resource_spans[0].scope_spans[0].spans[4]
    answer = httpx.post(f"{base}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF_HEADERS)
    assert answer.status_code == 200, answer.text
    trace = httpx.get(f"{base}/api/otel/traces/{7:032x}", timeout=60).json()
    (view,) = trace["spans"]
    assert len(view["otlp"]["span"]["attributes"]) == len(sent.attributes) == ATTRIBUTES + 4
    assert view["attributes"]["s2001"] == "text 2001" and view["attributes"]["n2996"] == 2996  # MLflow's, decoded
    assert set(view["attributes"]) == {pair.key for pair in sent.attributes}
    assert view["genai"]["input_tokens"] == 12 and view["events"][0]["name"] == "an event"
    assert httpx.get(f"{base}/api/otel/traces", params={"attr.n2996": "2996"}).json()["traces"]
    alone = httpx.get(f"{base}/api/otel/traces/{7:032x}/spans/{7:016x}", timeout=60)
    assert alone.status_code == 200 and alone.json() == view  # in pieces too, as in the trace


def test_the_json_of_a_huge_span_is_the_whole_parse_s(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = to_rows(parse(request_with_huge_span(mlflow=True).SerializeToString(), PROTOBUF), workspace="w", project="p")
    row = next(row for row in rows.rows if row["name"] == "huge")
    whole = "".join(spans_json([row], [], first=True))
    monkeypatch.setattr(huge_span, "HUGE_SPAN_BYTES", HUGE_SPAN_BYTES)
    monkeypatch.setattr(huge_span, "ATTRIBUTE_RUN_BYTES", RUN_BYTES)
    monkeypatch.setattr(present, "PIECE_ATTRIBUTES", 700)  # an MLflow value is decoded in every slice
    assert json.loads("".join(spans_json([row], [], first=True))) == json.loads(whole)  # keys repeat in its text
    assert len(json.loads(whole)["otlp"]["span"]["attributes"]) == ATTRIBUTES + 4
    assert json.loads(whole)["attributes"]["s2001"] == "text 2001"


def test_spans_of_many_attributes_sharing_terms_are_stored_on_each_store(
    monkeypatch: pytest.MonkeyPatch, make_app: Any, database_url: str
) -> None:
    """Their terms are not made distinct across spans (no set of them all): the insert leaves out the repeats."""
    monkeypatch.setattr(facts, "MANY_ATTRIBUTES", 100)
    request = make_request(range(1))
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.extend(KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(300))
    with serve_in_thread(make_app(["otel"], {"database_url": database_url})) as base:
        for _ in range(2):  # the second time, every span and term is stored already
            answer = httpx.post(f"{base}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF_HEADERS)
            assert answer.status_code == 200, answer.text
        found = httpx.get(f"{base}/api/otel/traces", params={"attr.k299": "299", "attr.k0": "0"}).json()["traces"]
        assert [trace["span_count"] for trace in found] == [2]
