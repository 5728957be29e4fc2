"""Resolve one deterministic order from soft ``before``/``after`` hints and hard ``requires``.

Pure Python, no pluggy: items are anything with ``name``, ``before``, ``after``
and ``requires``. The result depends only on the items' names and hints, never
on the order they were loaded in: among items free to go next, the smallest
name goes first (Kahn's algorithm over a heap).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar


class Orderable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def before(self) -> tuple[str, ...]: ...
    @property
    def after(self) -> tuple[str, ...]: ...
    @property
    def requires(self) -> tuple[str, ...]: ...


T = TypeVar("T", bound=Orderable)


@dataclass(frozen=True)
class Hint:
    """One declared hint: ``source`` said it goes ``kind`` ``target``."""

    source: str
    kind: Literal["before", "after"]
    target: str

    def __str__(self) -> str:
        return f"{self.source} {self.kind}={self.target}"


@dataclass(frozen=True)
class Edge:
    """``first`` must come before ``second`` because of ``hint``."""

    first: str
    second: str
    hint: Hint


class OrderingError(Exception):
    """The hints cannot be satisfied; the message says which ones and why.

    ``names`` are the items at fault: both items of a duplicate name, the items of a
    cycle, an item whose requirement is missing. ``fix`` says what to change.
    """

    def __init__(self, message: str, names: Sequence[str] = (), fix: str = "") -> None:
        super().__init__(message)
        self.names = tuple(names)
        self.fix = fix


@dataclass(frozen=True)
class Resolution(Generic[T]):
    order: tuple[T, ...]
    edges: tuple[Edge, ...]
    ignored: tuple[Hint, ...]
    """Soft hints that named an absent item, so had no effect."""

    def placed_by(self, name: str) -> tuple[Hint, ...]:
        """The hints that constrain where ``name`` stands."""
        return tuple(edge.hint for edge in self.edges if name in (edge.first, edge.second))

    def explain(self, describe: dict[str, str] | None = None) -> list[str]:
        """One line per item, in order: its position, name and the hints that placed it."""
        lines = []
        for position, item in enumerate(self.order, start=1):
            hints = ", ".join(map(str, self.placed_by(item.name))) or "no hints: placed by name"
            owner = f" [{describe[item.name]}]" if describe and item.name in describe else ""
            lines.append(f"{position:>3}. {item.name}{owner}  ({hints})")
        lines.extend(f"  ignored: {hint} ({hint.target!r} is not present)" for hint in self.ignored)
        return lines


def resolve_order(items: Sequence[T], *, kind: str = "item") -> Resolution[T]:
    """Order ``items`` so every hint holds, or raise :class:`OrderingError`.

    - ``A.before=B`` or ``B.after=A``: A comes first. A hint naming an absent item
      is soft: ignored, and reported in ``Resolution.ignored``.
    - ``A.requires=B``: B must be present, else an error; it implies no order.
    - A cycle is an error that prints the cycle and the hints that made it.
    """
    by_name: dict[str, T] = {}
    for item in items:
        if item.name in by_name:
            raise OrderingError(
                f"two {kind}s are named {item.name!r}; names must be unique",
                [item.name],
                fix=f"rename one of the {kind}s",
            )
        by_name[item.name] = item

    missing = [(item.name, required) for item in items for required in item.requires if required not in by_name]
    if missing:
        described = "; ".join(f"{name!r} requires {required!r}" for name, required in missing)
        raise OrderingError(
            f"missing required {kind}s: {described}. Present: {', '.join(sorted(by_name)) or 'none'}",
            [name for name, _ in missing],
            fix="install and enable the plugin that provides it, or remove the requirement",
        )

    edges: list[Edge] = []
    ignored: list[Hint] = []
    for item in items:
        for kind_, targets in (("before", item.before), ("after", item.after)):
            for target in targets:
                hint = Hint(item.name, kind_, target)  # type: ignore[arg-type]
                if target not in by_name or target == item.name:
                    ignored.append(hint)
                elif kind_ == "before":
                    edges.append(Edge(item.name, target, hint))
                else:
                    edges.append(Edge(target, item.name, hint))

    successors: dict[str, list[Edge]] = defaultdict(list)
    indegree = dict.fromkeys(by_name, 0)
    for edge in edges:
        successors[edge.first].append(edge)
        indegree[edge.second] += 1

    ready = [name for name, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    order: list[T] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(by_name[name])
        for edge in successors[name]:
            indegree[edge.second] -= 1
            if indegree[edge.second] == 0:
                heapq.heappush(ready, edge.second)

    if len(order) < len(by_name):
        stuck = {name for name, degree in indegree.items() if degree > 0}
        cycle = _find_cycle(stuck, successors)
        path = " -> ".join([edge.first for edge in cycle] + [cycle[0].first])
        made_by = "; ".join(str(edge.hint) for edge in cycle)
        raise OrderingError(
            f"{kind} order has a cycle: {path} (made by the hints: {made_by})",
            [edge.first for edge in cycle],
            fix="remove or reverse one of these hints",
        )

    return Resolution(tuple(order), tuple(edges), tuple(ignored))


def _find_cycle(stuck: set[str], successors: dict[str, list[Edge]]) -> list[Edge]:
    """Return the edges of one cycle among ``stuck`` names, in order.

    Every stuck name still has a stuck predecessor (that is why it is stuck), so
    walking backward from any of them must repeat a name: the repeat closes a cycle.
    """
    into: dict[str, list[Edge]] = defaultdict(list)
    for edges in successors.values():
        for edge in edges:
            if edge.first in stuck and edge.second in stuck:
                into[edge.second].append(edge)
    trail: list[Edge] = []
    seen: dict[str, int] = {}
    name = min(stuck)
    while name not in seen:
        seen[name] = len(trail)
        edge = min(into[name], key=lambda e: e.first)
        trail.append(edge)
        name = edge.first
    return list(reversed(trail[seen[name] :]))
