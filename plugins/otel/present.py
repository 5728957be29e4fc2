"""Stored rows to API JSON: readable fields, the span tree, and the OTLP/JSON exactly as sent."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from core import gc_paused

from . import huge_span
from .conventions import MLFLOW_MARKERS, StoredCall, decoded, json_value
from .conversation import GENAI_EVENTS, genai_attributes, span_genai

NS_PER_MS = 1_000_000
PIECE_CHARS = 64 * 1024
"""Streamed trace JSON is produced in pieces of about this size, each in one call off the event loop."""
SPAN_KINDS = {number: Span.SpanKind.Name(number) for number in Span.SpanKind.values()}
STATUS_CODES = {number: Status.StatusCode.Name(number) for number in Status.StatusCode.values()}
PIECE_ATTRIBUTES = 5000
"""A span with more attributes than this is written in slices of this many."""


def trace_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "trace_id": row["trace_id"],
        "project": row["project"],
        "service_name": row["service_name"],
        "root_name": row["root_name"],
        "start_time_unix_nano": row["start_ns"],
        "end_time_unix_nano": row["end_ns"],
        "duration_ms": row["duration_ns"] / NS_PER_MS,
        "span_count": row["span_count"],
        "error_count": row["error_count"],
        "status": "error" if row["error_count"] else "ok",
        "llm_calls": row["llm_calls"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cost_usd": row["cost_usd"],
        "session_id": row["session_id"],
    }


def span_view(
    row: dict[str, Any],
    span: Span | None = None,
    call: StoredCall | None = None,
    logs: Sequence[dict[str, Any]] = (),
    *,
    otlp: bool = True,
) -> dict[str, Any]:
    """The API view of a stored span (``span``: the parsed span, when the caller already has it;
    ``call``: what the store says of it as a model call, see ``SpanStore.stored_calls``; ``logs``: the views
    of its log records: GenAI events become its messages, the others its ``logs``; ``otlp=False``:
    without the ``otlp`` member, the costliest part, for readers that never look at it)."""
    span = Span.FromString(row["span"]) if span is None else span
    readable = decoded(attributes(span.attributes))
    resource = Resource.FromString(row["resource"])
    scope = InstrumentationScope.FromString(row["scope"])
    view = {
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "parent_span_id": row["parent_span_id"],
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind),
        "service_name": row["service_name"],
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / NS_PER_MS,
        "status": {"code": Status.StatusCode.Name(span.status.code), "message": span.status.message},
        "attributes": readable,
        "genai": None,
        "events": [
            {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": attributes(e.attributes)}
            for e in span.events
        ],
        "links": [
            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(), "attributes": attributes(link.attributes)}
            for link in span.links
        ],
        "resource": {"attributes": attributes(resource.attributes), "schema_url": row["resource_schema_url"]},
        "scope": {"name": scope.name, "version": scope.version, "attributes": attributes(scope.attributes)},
    }
    view["genai"] = span_genai(genai_attributes(readable), call, _event_triples(view["events"], logs))
    view["logs"] = [record for record in logs if record["event_name"] not in GENAI_EVENTS]
    if otlp:
        view["otlp"] = {
            "resource": json_format.MessageToDict(resource),
            "schemaUrl": row["resource_schema_url"],
            "scope": json_format.MessageToDict(scope),
            "scopeSchemaUrl": row["scope_schema_url"],
            "span": _hex_ids(json_format.MessageToDict(span)),
        }
    return view


def _event_triples(
    events: list[dict[str, Any]], logs: Sequence[dict[str, Any]]
) -> list[tuple[str, dict[str, Any], Any]]:
    """Span events (whose body is their attributes) and log records as the ``(name, attributes, body)``
    that GenAI events are read from."""
    return [(event["name"], event["attributes"], event["attributes"]) for event in events] + [
        (record["event_name"] or "", record["attributes"], record["body"]) for record in logs
    ]


def bare_span_view(row: dict[str, Any]) -> dict[str, Any]:
    """What :func:`span_view` says of a span that its columns hold, without parsing the span: no
    attributes, events or links, and no status message."""
    return {
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "parent_span_id": row["parent_span_id"],
        "name": row["name"],
        "kind": SPAN_KINDS.get(row["kind"], "SPAN_KIND_UNSPECIFIED"),
        "service_name": row["service_name"],
        "start_time_unix_nano": row["start_ns"],
        "end_time_unix_nano": row["end_ns"],
        "duration_ms": (row["end_ns"] - row["start_ns"]) / NS_PER_MS,
        "status": {"code": STATUS_CODES.get(row["status_code"], "STATUS_CODE_UNSET"), "message": ""},
        "attributes": {},
        "genai": None,
        "events": [],
        "links": [],
        "logs": [],
    }


def span_tree(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest spans under their parents (in start order); a span whose parent is absent is a root."""
    nodes = {
        view["span_id"]: {
            "span_id": view["span_id"],
            "name": view["name"],
            "service_name": view["service_name"],
            "duration_ms": view["duration_ms"],
            "status": view["status"]["code"],
            "children": [],
        }
        for view in views
    }
    roots: list[dict[str, Any]] = []
    for view in views:
        parent = nodes.get(view["parent_span_id"] or "")
        (parent["children"] if parent is not None else roots).append(nodes[view["span_id"]])
    return roots


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value" and not math.isfinite(value.double_value):
        return _non_finite(value.double_value)
    return getattr(value, kind)


def otlp_key_value(pair: Any) -> dict[str, Any]:
    """One attribute as OTLP/JSON writes it (what ``json_format.MessageToDict`` gives, many times faster)."""
    return {"key": pair.key, "value": otlp_any_value(pair.value)}


def otlp_any_value(value: AnyValue) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind is None:
        return {}
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "int_value":
        return {"intValue": str(value.int_value)}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "double_value":
        number = value.double_value
        return {"doubleValue": number if math.isfinite(number) else _non_finite(number)}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode()}
    if kind == "array_value":
        items = [otlp_any_value(item) for item in value.array_value.values]
        return {"arrayValue": {"values": items} if items else {}}
    pairs = [otlp_key_value(pair) for pair in value.kvlist_value.values]
    return {"kvlistValue": {"values": pairs} if pairs else {}}


def _non_finite(number: float) -> str:
    """JSON has no NaN or infinities; protobuf's JSON mapping writes them as these strings."""
    return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"


def spans_json(
    rows: list[dict[str, Any]],
    tree_nodes: list[dict[str, Any]],
    *,
    first: bool,
    calls: Mapping[str, StoredCall] = MappingProxyType({}),
    logs: Mapping[str, Sequence[dict[str, Any]]] = MappingProxyType({}),
) -> Iterator[str]:
    """The JSON of ``span_view`` for each row, comma-separated (led by a comma unless ``first``), in
    pieces of about :data:`PIECE_CHARS`; a span with many attributes is written in slices, so no
    piece costs more than a few milliseconds or holds more than one slice. Each span's tree node
    (what :func:`span_tree` needs) is appended to ``tree_nodes``."""
    buffered: list[str] = []
    size = 0
    for row in rows:
        if not first:
            buffered.append(",")
        first = False
        for piece in _span_json(row, tree_nodes, calls.get(row["span_id"]), logs.get(row["span_id"], ())):
            buffered.append(piece)
            size += len(piece)
            if size >= PIECE_CHARS:
                yield "".join(buffered)
                buffered, size = [], 0
    if buffered:
        yield "".join(buffered)


def _span_json(
    row: dict[str, Any], tree_nodes: list[dict[str, Any]], call: StoredCall | None, logs: Sequence[dict[str, Any]]
) -> Iterator[str]:
    """``span_view(row)`` as JSON, attributes first, in slices (then the rest, once they are dropped). A huge
    span (see :mod:`.huge_span`) is parsed without its attributes, and they a run at a time, once per pass,
    with the cyclic GC paused while each slice is made: each of the full collections that its millions of
    short-lived objects set off walked the whole heap, holding the GIL for 90 ms or more."""
    if huge_span.is_huge(row["span"]):
        parts = huge_span.split(row["span"])
        runs = lambda: huge_span.attribute_runs(parts)  # noqa: E731
        yield from _each_paused(_attributes_json(row, huge_span.head(parts), runs, tree_nodes, call, logs))
    else:
        span = Span.FromString(row["span"])
        yield from _attributes_json(row, span, lambda: (span.attributes,), tree_nodes, call, logs)


def _each_paused(pieces: Iterator[str]) -> Iterator[str]:
    """``pieces``, each made with the cyclic GC paused; never paused while the consumer holds a piece (a client
    reading slowly, or one that left, must not keep the collector off)."""
    while True:
        with gc_paused():
            piece = next(pieces, None)
        if piece is None:
            return
        yield piece


def _attributes_json(
    row: dict[str, Any],
    span: Span,
    runs: Callable[[], Iterable[Any]],
    tree_nodes: list[dict[str, Any]],
    call: StoredCall | None,
    logs: Sequence[dict[str, Any]],
) -> Iterator[str]:
    """:func:`_span_json` of ``span``, whose attributes ``runs()`` gives (each time it is called), a run at a time."""
    mlflow = any(pair.key in MLFLOW_MARKERS for pairs in runs() for pair in pairs)
    read: dict[str, Any] = {}
    yield '{"attributes":{'
    comma = ""
    for pairs in _slices(runs()):
        values = attributes(pairs)
        # each slice decoded as the span's, since only one of them holds the MLflow marker
        values = {key: json_value(value) for key, value in values.items()} if mlflow else values
        read.update(genai_attributes(values))
        yield comma + json.dumps(values)[1:-1]
        comma = ","
    yield '},"otlp":{"span":{'
    opening = '"attributes":['
    for pairs in _slices(runs()):
        yield opening + json.dumps([otlp_key_value(pair) for pair in pairs])[1:-1]
        opening = ","
    if opening == ",":
        yield "],"
    del span.attributes[:]
    view = span_view(row, span, logs=logs)
    tree_nodes.append(
        {key: view[key] for key in ("span_id", "parent_span_id", "name", "service_name", "duration_ms", "status")}
    )
    otlp = view.pop("otlp")
    del view["attributes"]
    view["genai"] = span_genai(read, call, _event_triples(view["events"], logs))
    yield json.dumps(otlp.pop("span"))[1:] + "," + json.dumps(otlp)[1:] + "," + json.dumps(view)[1:]


def _slices(runs: Iterable[Any]) -> Iterator[Any]:
    """The attributes of each run (a repeated ``KeyValue`` field), :data:`PIECE_ATTRIBUTES` at a time."""
    for pairs in runs:
        for start in range(0, len(pairs), PIECE_ATTRIBUTES):
            yield pairs[start : start + PIECE_ATTRIBUTES]


def _hex_ids(span: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes ids as hex where protobuf's JSON writes base64."""
    for key in ("traceId", "spanId", "parentSpanId"):
        if key in span:
            span[key] = base64.b64decode(span[key]).hex()
    for link in span.get("links", []):
        for key in ("traceId", "spanId"):
            if key in link:
                link[key] = base64.b64decode(link[key]).hex()
    return span
