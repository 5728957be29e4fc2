"""A trace's spans by column, and their tree by index: what the analysis walks, with no dict per span.

The trace reader gives a stored trace by column (``TraceReader.columns``); :func:`columns_of` makes
the same of a trace as the query API answers it (the batch job reads traces over HTTP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the otel plugin's public types; the assistant loads without otel
    from plugins.otel.hookspecs import TraceColumns

ROOTS = -1
"""The key of the roots in :attr:`Tree.children`: spans without a parent, or whose parent is not in the trace."""
ERROR = "STATUS_CODE_ERROR"


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


@dataclass(frozen=True, slots=True)
class Tree:
    """The spans' times (ns) and their children, by index into the columns."""

    starts: Sequence[int]
    ends: Sequence[int]
    children: dict[int, list[int]]
    """A span's children in span order, by the index of their parent (:data:`ROOTS`: the roots). A span that
    is its own parent is a root; spans whose parents loop are children of each other, and under no root."""


def tree_of(columns: TraceColumns) -> Tree:
    """The tree of the spans (a span whose id another span also has counts once, the last)."""
    span_ids = columns["span_ids"]
    index: dict[str | None, int] = {span_id: position for position, span_id in enumerate(span_ids)}
    unique = len(index) == len(span_ids)
    children: dict[int, list[int]] = {}
    for position, parent in enumerate(map(index.get, columns["parent_span_ids"])):
        if not unique and index[span_ids[position]] != position:
            continue
        children.setdefault(ROOTS if parent is None or parent == position else parent, []).append(position)
    return Tree(columns["starts"], columns["ends"], children)
