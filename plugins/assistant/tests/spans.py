"""Spans shaped like the otel query API's, built by hand for the analysis' unit tests.

Their ``genai`` view is made by the otel plugin's own reading of the attributes (its test kit,
``plugins.otel.testing``), each model call carrying its call unless ``counted`` says otherwise, and
costing ``cost_usd``."""

from __future__ import annotations

from typing import Any

from plugins.assistant.analysis import analyse_columns
from plugins.assistant.settings import Settings
from plugins.assistant.tree import ERROR
from plugins.otel.hookspecs import TraceColumns
from plugins.otel.testing import genai_view

MS = 1_000_000


def span(
    span_id: str,
    begin_ms: float,
    end_ms: float,
    parent: str | None = None,
    *,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    error: bool = False,
    events: list[dict[str, Any]] | None = None,
    counted: bool = True,
    cost_usd: float | None = None,
) -> dict[str, Any]:
    return {
        "trace_id": "ab" * 16,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name or span_id,
        "service_name": "svc",
        "start_time_unix_nano": int(begin_ms * MS),
        "end_time_unix_nano": int(end_ms * MS),
        "status": {"code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET", "message": ""},
        "attributes": attributes or {},
        "events": events or [],
        "genai": genai_view(attributes or {}, counted=counted, cost_usd=cost_usd, events=events or ()),
    }


def trace(*spans: dict[str, Any]) -> dict[str, Any]:
    return {"trace_id": "ab" * 16, "spans": list(spans)}


def analyse(trace: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The analysis of a trace as the query API answers it (``GET /api/otel/traces/{id}``)."""
    return analyse_columns(columns_of(trace), settings)


def columns_of(trace: dict[str, Any]) -> TraceColumns:
    """A trace as ``GET /api/otel/traces/{id}`` answers it, by column; its ``details`` are the spans
    that are errors or have events or GenAI facts (all that the analysis reads of a span's views)."""
    spans = trace["spans"]
    return {
        "trace_id": trace["trace_id"],
        "span_ids": [span["span_id"] for span in spans],
        "parent_span_ids": [span["parent_span_id"] for span in spans],
        "names": [span["name"] for span in spans],
        "service_names": [span["service_name"] for span in spans],
        "starts": [span["start_time_unix_nano"] for span in spans],
        "ends": [span["end_time_unix_nano"] for span in spans],
        "details": {
            index: span
            for index, span in enumerate(spans)
            if span["status"]["code"] == ERROR or span.get("events") or span.get("genai")
        },
    }
