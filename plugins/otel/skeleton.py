"""A trace's skeleton: every span in a few bytes (no attributes), for drawing the waterfall of a huge trace.

A piece of the skeleton is JSON: ``spans`` is a list of compact rows in start order,

    [span_id, parent, name, service, start_us, duration_us, flags, kind, model, input_tokens, output_tokens, cost_usd]

- ``parent``: the parent's index in this piece's ``spans`` when it is in this piece, else its
  span id (an earlier piece, or not stored), or ``null`` for a root;
- ``name``, ``service``, ``kind`` and ``model`` index this piece's ``names``, ``services``,
  ``kinds`` and ``models`` lists;
- ``start_us`` is microseconds after the trace's start, ``duration_us`` the span's length in
  microseconds (both whole numbers);
- ``flags``: :data:`FLAG_ERROR` (status error, or an exception event), :data:`FLAG_EXCEPTION`,
  :data:`FLAG_MODEL_CALL` (an LLM or embedding call), :data:`FLAG_NOT_COUNTED` (a model call
  whose tokens and cost a span nested in it carries, see ``conventions.counted_calls``);
- ``input_tokens``, ``output_tokens`` and ``cost_usd`` (US dollars) of a model call, as the store keeps
  them (``null`` when not known);
- trailing fields that say nothing (flags 0, ``null``) are left out.

The kind is what the span is in LLM terms (``llm``, ``tool``, ``agent``, ``retriever``,
``embedding``, ...), read from OpenInference, the OpenTelemetry GenAI conventions, MLflow and the
Vercel AI SDK by the normaliser's rules; the model from the first of :data:`MODEL_KEYS` present. Only spans whose stored
bytes hold one of :data:`MARKERS` are parsed at all: the rest cost one byte search each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .conventions import KIND_ATTRIBUTES, MLFLOW_MARKERS, REQUEST_MODEL, RESPONSE_MODEL, StoredCall, decoded, span_kind
from .decode import STATUS_ERROR

FIELDS = (
    "span_id",
    "parent",
    "name",
    "service",
    "start_us",
    "duration_us",
    "flags",
    "kind",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
FLAG_ERROR = 1
FLAG_EXCEPTION = 2
FLAG_NOT_COUNTED = 4
FLAG_MODEL_CALL = 8
FLAGS_AT = FIELDS.index("flags")
NS_PER_US = 1000
MODEL_KEYS = (*RESPONSE_MODEL, *REQUEST_MODEL)
"""Where a span's model is read from: the answering model first, as the normaliser reads it."""
MARKERS = (
    b"gen_ai.",
    b"openinference.span.kind",
    b"mlflow.spanType",
    b"llm.model_name",
    b"ai.model.id",
    b"ai.toolCall",
    b"ai.operationId",
    b"llm.request",
    b"traceloop.span.kind",
)
WANTED_KEYS = frozenset((*KIND_ATTRIBUTES, *MODEL_KEYS, MLFLOW_MARKERS[1]))
EXCEPTION_MARKER = b"exception"
COLUMNS = ("span_id", "parent_span_id", "name", "service_name", "start_ns", "end_ns", "status_code", "span")
"""The store's columns a skeleton row is made of."""


class Piece:
    """One piece of the skeleton being written: its string tables and where each span id sits in it."""

    def __init__(self, trace_start_ns: int, calls: Mapping[str, StoredCall]) -> None:
        self.trace_start_ns = trace_start_ns
        self.calls = calls
        self.tables: dict[str, dict[str, int]] = {"names": {}, "services": {}, "kinds": {}, "models": {}}
        self.index_of: dict[str, int] = {}

    def rows_json(self, rows: list[dict[str, Any]]) -> str:
        """``rows`` (store rows with :data:`COLUMNS`) as JSON, comma-separated, led by a comma after earlier rows."""
        first = not self.index_of
        text = json.dumps([self._row(row) for row in rows], separators=(",", ":"))[1:-1]
        return text if first or not text else "," + text

    def tables_json(self) -> str:
        """``"names":[...],"services":[...],"kinds":[...],"models":[...]`` for the rows written so far."""
        return ",".join(
            f'"{table}":' + json.dumps(list(values), separators=(",", ":")) for table, values in self.tables.items()
        )

    def _row(self, row: dict[str, Any]) -> list[Any]:
        span_id, parent_id = row["span_id"], row["parent_span_id"]
        parent: int | str | None = parent_id if parent_id is None else self.index_of.get(parent_id, parent_id)
        self.index_of[span_id] = len(self.index_of)
        flags, kind, model = badges(row["span"])
        if row["status_code"] == STATUS_ERROR:
            flags |= FLAG_ERROR
        call = self.calls.get(span_id)
        if call is not None:
            flags |= FLAG_MODEL_CALL if call.counted else FLAG_MODEL_CALL | FLAG_NOT_COUNTED
        start, end = row["start_ns"], row["end_ns"]
        encoded = [
            span_id,
            parent,
            self._entry("names", row["name"]),
            self._entry("services", row["service_name"]),
            (start - self.trace_start_ns) // NS_PER_US,
            max(end - start, 0) // NS_PER_US,
            flags,
            None if kind is None else self._entry("kinds", kind),
            None if model is None else self._entry("models", model),
            *((None, None, None) if call is None else (call.input_tokens, call.output_tokens, call.cost_usd)),
        ]
        while len(encoded) > FLAGS_AT and (encoded[-1] is None or (len(encoded) == FLAGS_AT + 1 and encoded[-1] == 0)):
            encoded.pop()  # absent values, then flags 0, say nothing
        return encoded

    def _entry(self, table: str, text: str) -> int:
        entries = self.tables[table]
        found = entries.get(text)
        if found is None:
            found = entries[text] = len(entries)
        return found


def badges(stored_span: bytes) -> tuple[int, str | None, str | None]:
    """``(flags, kind, model)`` of a stored span, parsed only when its bytes hold a marker."""
    maybe_exception = EXCEPTION_MARKER in stored_span
    if not maybe_exception and not any(marker in stored_span for marker in MARKERS):
        return 0, None, None
    span = Span.FromString(stored_span)
    flags = FLAG_ERROR | FLAG_EXCEPTION if any(event.name == "exception" for event in span.events) else 0
    return flags, *llm_kind(span)


def llm_kind(span: Span) -> tuple[str | None, str | None]:
    """What the span is in LLM terms, and the model it called (either ``None`` when not said), read with the
    normaliser's rules (:func:`.conventions.span_kind`) from the few attributes they need."""
    values = decoded({pair.key: pair.value.string_value for pair in span.attributes if pair.key in WANTED_KEYS})
    model = next((value for key in MODEL_KEYS if isinstance(value := values.get(key), str) and value), None)
    return span_kind(values.get) or ("llm" if model else None), model
