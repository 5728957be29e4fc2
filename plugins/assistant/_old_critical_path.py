"""The critical path of a trace, as Jaeger defines it: what the end of the trace waited on.

Start at the end of the root span and walk back in time. At each point take the
child that finished last before that point, put the stretch from that child's end
to the point on the path as the parent's own time, then continue inside that child
from its end back to its start, and go on in the parent from the child's start.
Where no child ran before the point, the parent's own time reaches back to its start.

- Sequential children are all on the path.
- A child still running at the point (it overlaps a later one) is cut at that point:
  only its part before the later child's start is on the path. (jaeger-ui skips such a
  child altogether; cutting it keeps the time the parent waited on it.)
- Children are clipped to their parent: an async child that outlives its parent is on
  the path only up to the parent's end; a child wholly outside its parent is not on it.
- Spans whose parent is not in the trace, and multiple roots, are children of the whole
  trace: the walk starts at the trace's end and takes the roots like children. Stretches
  where no root ran are left out.

Linear after one sort: each parent's children are sorted by end once, and the walk
through a parent only moves forward through that list, so every child is looked at a
bounded number of times. The walk uses an explicit stack, so deep traces cannot overflow.
"""

from __future__ import annotations

import operator
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Span = dict[str, Any]


@dataclass(slots=True)
class Segment:
    """A stretch of the path: ``span`` was what the trace waited on from ``begin`` to ``finish`` (ns)."""

    span: Span | None  # None: the whole trace (no root ran then); never emitted
    begin: int
    finish: int


@dataclass(slots=True)
class _Node:
    span: Span | None
    begin: int
    finish: int
    children: list[_Node] = field(default_factory=list)


BY_END = operator.attrgetter("finish", "begin")
"""A node's sort key among its siblings: when it ends, then when it begins."""


class _Walk:
    """One parent's backward walk: its children latest-ending first, and the cursor (the current point)."""

    def __init__(self, node: _Node, cursor: int) -> None:
        self.node = node
        self.cursor = cursor
        children = node.children
        self.by_end = sorted(children, key=BY_END, reverse=True) if len(children) > 1 else children
        self.next_index = 0
        self.running: deque[_Node] = deque()  # passed over (end >= cursor), latest-ending first

    def last_finishing_child(self) -> _Node | None:
        """The child that finished last before the cursor; one still running at the cursor wins (it is cut there)."""
        while self.next_index < len(self.by_end) and self.by_end[self.next_index].finish >= self.cursor:
            self.running.append(self.by_end[self.next_index])
            self.next_index += 1
        # the cursor only moves back, so a child that starts after it (or at it, unless the child is
        # an instant there) can never be taken again
        while self.running and (
            self.running[0].begin > self.cursor or self.running[0].finish > self.running[0].begin == self.cursor
        ):
            self.running.popleft()
        if self.running:
            return self.running.popleft()
        if self.next_index < len(self.by_end):
            self.next_index += 1
            return self.by_end[self.next_index - 1]
        return None


Children = dict[str | None, list[Span]]
"""Spans by the id of their parent; ``None``: the roots, and spans whose parent is not in the trace."""


def children_of(spans: list[Span]) -> Children:
    """The trace's spans by parent (a span whose id another span also has counts once, the last)."""
    by_id = {span["span_id"]: span for span in spans}
    children: Children = {}
    for span_id, span in by_id.items():
        parent = span["parent_span_id"]
        children.setdefault(parent if parent in by_id and parent != span_id else None, []).append(span)
    return children


def critical_path(spans: list[Span], children: Children | None = None) -> list[Segment]:
    """The path's segments in time order; each span's segments sum to its time on the path.
    ``children``: :func:`children_of` the spans, when the caller has it already."""
    if not spans:
        return []
    trace = _tree(spans, children_of(spans) if children is None else children)
    backwards: list[Segment] = []
    stack = [_Walk(trace, trace.finish)]
    while stack:
        walk = stack[-1]
        child = walk.last_finishing_child()
        if child is None:
            backwards.append(Segment(walk.node.span, walk.node.begin, walk.cursor))
            stack.pop()
            continue
        child_end = min(child.finish, walk.cursor)
        backwards.append(Segment(walk.node.span, child_end, walk.cursor))
        walk.cursor = child.begin
        if child.children:
            stack.append(_Walk(child, child_end))
        else:  # a leaf is all its own time: what walking it would give, without the walk (most spans)
            backwards.append(Segment(child.span, child.begin, child_end))
    return [s for s in reversed(backwards) if s.span is not None and (s.finish > s.begin or _whole_span(s))]


def _whole_span(segment: Segment) -> bool:
    """A zero-length span is on the path only when it is all there is of it (a single instant span)."""
    span = segment.span
    assert span is not None
    return bool(segment.begin == span["start_time_unix_nano"] and segment.finish == span["end_time_unix_nano"])


def _tree(spans: list[Span], children: Children) -> _Node:
    """The spans as a tree under a node for the whole trace, each node clipped to its parent."""
    begin = min(span["start_time_unix_nano"] for span in spans)
    finish = max(span["end_time_unix_nano"] for span in spans)
    trace = _Node(None, begin, finish)
    pending = [(trace, None)]
    while pending:  # a node's children are clipped once the node itself is
        node, key = pending.pop()
        for span in children.get(key, ()):
            start, end = span["start_time_unix_nano"], span["end_time_unix_nano"]
            child_begin = start if start > node.begin else node.begin
            child_finish = min(end if end > start else start, node.finish)
            if child_begin > child_finish:
                continue  # wholly outside its parent: not part of what the parent waited on
            child = _Node(span, child_begin, child_finish)
            node.children.append(child)
            if span["span_id"] in children:
                pending.append((child, span["span_id"]))
    return trace
