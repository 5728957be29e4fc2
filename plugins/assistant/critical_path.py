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
It works on the spans by index (see :mod:`.tree`): no object per span or per segment.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .tree import ROOTS, Tree


@dataclass(frozen=True, slots=True)
class Path:
    """The path's segments in time order, by column: segment ``i`` is span ``spans[i]`` (an index of the
    tree's spans), what the trace waited on from ``begins[i]`` to ``finishes[i]`` (ns)."""

    spans: list[int] = field(default_factory=list)
    begins: list[int] = field(default_factory=list)
    finishes: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Walk:
    """One parent's backward walk: its children latest-ending first, and the cursor (the current point)."""

    node: int
    cursor: int
    by_end: list[int]
    next_index: int = 0
    running: deque[int] = field(default_factory=deque)  # passed over (end >= cursor), latest-ending first


def critical_path(tree: Tree) -> Path:
    """The path's segments in time order; each span's segments sum to its time on the path."""
    starts, ends = tree.starts, tree.ends
    if not starts:
        return Path()
    trace = len(starts)  # the node for the whole trace, after the spans
    begins, finishes, kept = _clipped(tree, trace)
    spans: list[int] = []  # the segments, backwards
    from_: list[int] = []
    to: list[int] = []
    stack = [_Walk(trace, finishes[trace], _by_end(kept.get(trace, []), begins, finishes))]
    while stack:
        walk = stack[-1]
        cursor, by_end, running, index = walk.cursor, walk.by_end, walk.running, walk.next_index
        # the child that finished last before the cursor; one still running at the cursor wins (it is cut there)
        while index < len(by_end) and finishes[by_end[index]] >= cursor:
            running.append(by_end[index])
            index += 1
        # the cursor only moves back, so a child that starts after it (or at it, unless the child is
        # an instant there) can never be taken again
        while running and (begins[running[0]] > cursor or finishes[running[0]] > begins[running[0]] == cursor):
            running.popleft()
        if running:
            child = running.popleft()
        elif index < len(by_end):
            child = by_end[index]
            index += 1
        else:
            spans.append(walk.node)
            from_.append(begins[walk.node])
            to.append(cursor)
            stack.pop()
            continue
        walk.next_index = index
        child_end = min(finishes[child], cursor)
        spans.append(walk.node)
        from_.append(child_end)
        to.append(cursor)
        walk.cursor = begins[child]
        grandchildren = kept.get(child)
        if grandchildren:
            stack.append(_Walk(child, child_end, _by_end(grandchildren, begins, finishes)))
        else:  # a leaf is all its own time: what walking it would give, without the walk (most spans)
            spans.append(child)
            from_.append(begins[child])
            to.append(child_end)
    path = Path()
    for span, begin, finish in zip(reversed(spans), reversed(from_), reversed(to), strict=True):
        # a zero-length span is on the path only when it is all there is of it (a single instant span)
        if span != trace and (finish > begin or (begin == starts[span] and finish == ends[span])):
            path.spans.append(span)
            path.begins.append(begin)
            path.finishes.append(finish)
    return path


def _by_end(children: list[int], begins: list[int], finishes: list[int]) -> list[int]:
    """The children latest-ending first (then latest-beginning; then in span order)."""
    if len(children) < 2:
        return children
    return sorted(sorted(children, key=begins.__getitem__, reverse=True), key=finishes.__getitem__, reverse=True)


def _clipped(tree: Tree, trace: int) -> tuple[list[int], list[int], dict[int, list[int]]]:
    """Each span's begin and finish clipped to its parent's (index ``trace``: the whole trace), and the
    children of each node that are not wholly outside it (what the parent waited on)."""
    starts, ends, children = tree.starts, tree.ends, tree.children
    begins = [0] * (trace + 1)
    finishes = [0] * (trace + 1)
    begins[trace], finishes[trace] = min(starts), max(ends)
    kept: dict[int, list[int]] = {}
    pending = [trace]
    while pending:  # a node's children are clipped once the node itself is
        node = pending.pop()
        node_begin, node_finish = begins[node], finishes[node]
        inside = []
        for child in children.get(ROOTS if node == trace else node, ()):
            start, end = starts[child], ends[child]
            child_begin = start if start > node_begin else node_begin
            child_finish = min(end if end > start else start, node_finish)
            if child_begin > child_finish:
                continue  # wholly outside its parent: not part of what the parent waited on
            begins[child], finishes[child] = child_begin, child_finish
            inside.append(child)
            if child in children:
                pending.append(child)
        if inside:
            kept[node] = inside
    return begins, finishes, kept
