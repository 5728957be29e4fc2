"""A trace's spans by column, and their tree by index: what the analysis walks, with no dict per span.

The trace reader gives a stored trace by column (``TraceReader.columns``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the otel plugin's public types; the assistant loads without otel
    from plugins.otel.hookspecs import TraceColumns

ROOTS = -1
"""The key of the roots in :attr:`Tree.children`: spans without a parent, or whose parent is not in the trace."""
ERROR = "STATUS_CODE_ERROR"


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
