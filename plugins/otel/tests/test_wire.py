"""A big OTLP request parsed in pieces (so no parse holds the GIL long) reads exactly as when parsed whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from plugins.otel import wire
from plugins.otel.decode import PARSE_IN_PIECES_BYTES, PROTOBUF, PayloadError, parse

UNKNOWN_FIELD = b"\xf8\x06\x01"  # field 111, varint 1: unknown to every level, kept by protobuf


def with_unknown_field(message: ResourceSpans | ScopeSpans) -> bytes:
    return message.SerializeToString() + UNKNOWN_FIELD


def request_of(resources: int, scopes: int, spans: int, attribute_bytes: int = 20) -> ExportTraceServiceRequest:
    """``resources`` x ``scopes`` x ``spans`` spans, schema URLs and unknown fields at every level."""
    request = ExportTraceServiceRequest()
    for r in range(resources):
        resource_spans = ResourceSpans(schema_url=f"https://schema/{r}")
        resource_spans.resource.attributes.add(key="service.name").value.string_value = f"svc-{r}"
        for s in range(scopes):
            scope_spans = ScopeSpans(schema_url=f"https://scope-schema/{s}")
            scope_spans.scope.name, scope_spans.scope.version = f"lib-{s}", "1.0"
            for n in range(spans):
                span = scope_spans.spans.add(
                    name=f"op-{r}-{s}-{n}", trace_id=bytes(15) + b"\x01", span_id=(n + 1).to_bytes(8, "big")
                )
                span.attributes.add(key="payload").value.string_value = "x" * attribute_bytes
            resource_spans.scope_spans.add().MergeFromString(with_unknown_field(scope_spans))
        request.resource_spans.add().MergeFromString(with_unknown_field(resource_spans))
    return request


def spans_with_context(request: ExportTraceServiceRequest) -> list[tuple[bytes, bytes, bytes]]:
    """Each span as ``(its ResourceSpans without spans, its ScopeSpans without spans, the span)``, serialized."""
    found = []
    for resource_spans in request.resource_spans:
        resource_head = ResourceSpans()
        resource_head.CopyFrom(resource_spans)
        del resource_head.scope_spans[:]
        for scope_spans in resource_spans.scope_spans:
            scope_head = ScopeSpans()
            scope_head.CopyFrom(scope_spans)
            del scope_head.spans[:]
            found += [
                (resource_head.SerializeToString(), scope_head.SerializeToString(), span.SerializeToString())
                for span in scope_spans.spans
            ]
    return found


def test_pieces_hold_every_span_with_its_resource_scope_and_unknown_fields() -> None:
    payload = request_of(resources=2, scopes=2, spans=40).SerializeToString()
    assert UNKNOWN_FIELD in payload
    pieces = [piece for piece, _ in wire.pieces(payload, piece_bytes=600)]
    merged = ExportTraceServiceRequest()
    for piece in pieces:
        merged.MergeFromString(piece)
    whole = ExportTraceServiceRequest.FromString(payload)
    assert spans_with_context(merged) == spans_with_context(whole) and len(spans_with_context(whole)) == 160
    assert (
        len(pieces) > 4 and max(len(piece) for piece in pieces) < 600 + 200
    )  # a run of spans, plus its resource and scope


def test_a_span_bigger_than_a_piece_is_a_piece_of_its_own() -> None:
    payload = request_of(resources=1, scopes=1, spans=3, attribute_bytes=5000).SerializeToString()
    assert len(list(wire.pieces(payload, piece_bytes=1000))) == 3


def test_a_big_request_is_parsed_in_pieces_to_the_same_spans() -> None:
    request = request_of(resources=2, scopes=1, spans=PARSE_IN_PIECES_BYTES // 200, attribute_bytes=100)
    payload = request.SerializeToString()
    assert len(payload) >= PARSE_IN_PIECES_BYTES
    parsed = parse(bytearray(payload), PROTOBUF)
    assert len(parsed.resource_spans) > 2, "not parsed in pieces"
    assert spans_with_context(parsed) == spans_with_context(request)


def big_payload() -> bytes:
    return request_of(
        resources=1, scopes=1, spans=PARSE_IN_PIECES_BYTES // 100, attribute_bytes=100
    ).SerializeToString()


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(lambda payload: payload[:-7], id="truncated"),
        pytest.param(lambda payload: payload.replace(b"\x0a", b"\x08", 1), id="resource_spans as a varint"),
        pytest.param(lambda payload: payload + b"\x0f", id="a bad wire type"),
    ],
)
def test_a_damaged_big_request_gets_400(damaged: Callable[[bytes], bytes]) -> None:
    payload = damaged(big_payload())
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(payload)
    with pytest.raises(PayloadError) as refused:
        parse(payload, PROTOBUF)
    assert refused.value.status == 400 and "not a valid OTLP ExportTraceServiceRequest" in str(refused.value)


def test_what_the_walk_does_not_expect_is_left_to_protobuf() -> None:
    payload = big_payload() + b"\x7b\x7c"  # an empty group, field 15: obsolete, but protobuf reads it
    with pytest.raises(wire.Malformed):
        list(wire.pieces(payload, PARSE_IN_PIECES_BYTES))
    assert spans_with_context(parse(payload, PROTOBUF)) == spans_with_context(
        ExportTraceServiceRequest.FromString(payload)
    )
