"""Search inside one trace: the spans whose name, service or an attribute value holds some text."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .facts import term_value


def span_matches(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The rows (with ``span_id``, ``name``, ``service_name`` and ``span``) that hold ``text``,
    case-insensitively, in their name, service or a scalar attribute value; each match says where.
    A span's stored bytes are parsed only when they may hold the text (always, for non-ASCII text)."""
    needle = text.casefold()
    encoded = needle.encode() if needle.isascii() else None
    found = []
    for row in rows:
        if needle in row["name"].casefold():
            found.append(_match(row, "name"))
        elif needle in row["service_name"].casefold():
            found.append(_match(row, "service"))
        elif encoded is None or encoded in row["span"].lower():
            key = _attribute_holding(Span.FromString(row["span"]), needle)
            if key is not None:
                found.append(_match(row, "attribute", key))
    return found


def _attribute_holding(span: Span, needle: str) -> str | None:
    for pair in span.attributes:
        value = term_value(pair.value) if pair.value.WhichOneof("value") != "string_value" else pair.value.string_value
        if value is not None and needle in value.casefold():
            return pair.key
    return None


def _match(row: dict[str, Any], where: str, key: str | None = None) -> dict[str, Any]:
    return {"span_id": row["span_id"], "name": row["name"], "where": where, "key": key}
