"""Stored rows to API JSON: readable fields, the span tree, and the OTLP/JSON exactly as sent."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

NS_PER_MS = 1_000_000


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
    }


def span_view(row: dict[str, Any]) -> dict[str, Any]:
    span = Span.FromString(row["span"])
    resource = Resource.FromString(row["resource"])
    scope = InstrumentationScope.FromString(row["scope"])
    return {
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
        "attributes": attributes(span.attributes),
        "events": [
            {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": attributes(e.attributes)} for e in span.events
        ],
        "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex(), "attributes": attributes(l.attributes)} for l in span.links],
        "resource": {"attributes": attributes(resource.attributes), "schema_url": row["resource_schema_url"]},
        "scope": {"name": scope.name, "version": scope.version, "attributes": attributes(scope.attributes)},
        "otlp": {
            "resource": json_format.MessageToDict(resource),
            "schemaUrl": row["resource_schema_url"],
            "scope": json_format.MessageToDict(scope),
            "scopeSchemaUrl": row["scope_schema_url"],
            "span": _hex_ids(json_format.MessageToDict(span)),
        },
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
    roots = []
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
    return getattr(value, kind)


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


