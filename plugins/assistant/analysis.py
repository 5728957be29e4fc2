"""Deterministic trace analysis: no LLM, the same answer for the same trace.

Input: a trace as the otel query API returns it (``spans`` with ids, parents,
names, times in ns, status, attributes and events). Output, written to read well
whatever the trace's size:

- the critical path (see :mod:`.critical_path`): its segments (the longest
  :data:`PATH_SEGMENTS` of them, in time order), and its few largest contributors by
  span name (numbers in names read as ``*``) with their share of the trace; a trace where nothing ran in parallel is
  said to be sequential, in one line, instead;
- the slowest spans by self time, one line per span name (names that differ only in their
  numbers are one): count, total and max;
- error spans and their messages;
- repeated calls under one parent (N+1), one finding per pattern: calls of one name
  under parents whose names differ only in their numbers (``batch 0``, ``batch 1``...
  make ``batch *``), with the number of parents, the calls and their total time;
- gaps where nothing ran, and the GenAI section (see :mod:`.genai`).

It reads the spans by column (see :mod:`.tree`): a 100,000-span trace is a few lists, not 100,000
dicts, and only the spans that are errors or have GenAI facts come whole. Every step is linear in
the spans (plus sorts), so a huge trace costs time in proportion; callers on the event loop run it
in a thread.
"""

from __future__ import annotations

import functools
import heapq
import operator
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .critical_path import Path, critical_path
from .genai import genai_analysis
from .intervals import union, union_length
from .settings import Settings
from .tree import ERROR, ROOTS, Tree, columns_of, tree_of

if TYPE_CHECKING:  # the otel plugin's public types; the assistant loads without otel
    from plugins.otel.hookspecs import TraceColumns

Span = dict[str, Any]

NS_PER_MS = 1_000_000
SLOWEST = 5
REPEATED_AT_LEAST = 5
GAP_AT_LEAST_NS = NS_PER_MS
GAP_SHARE_AT_LEAST = 0.05
PATH_IN_TEXT = 24
"""Critical-path segments written out in the text (and so the LLM prompt); the rest are summed up."""
PATH_SEGMENTS = 1000
"""Critical-path segments in the answer (the longest); the summary by name covers them all."""
PATH_CONTRIBUTORS = 5
PARENTS_LISTED = 1000
"""Parent span ids an N+1 finding lists (``parents`` counts them all)."""
NUMBER = re.compile(r"\d+")


def analyse(trace: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The analysis of a trace as the query API answers it (``GET /api/otel/traces/{id}``)."""
    return analyse_columns(columns_of(trace), settings)


def analyse_columns(columns: TraceColumns, settings: Settings) -> dict[str, Any]:
    """The analysis of a trace by column (``TraceReader.columns``)."""
    starts, ends = columns["starts"], columns["ends"]
    if not starts:
        return {
            "trace_id": columns["trace_id"],
            "duration_ms": 0.0,
            "span_count": 0,
            "sequential": True,
            "critical_path": [],
            "critical_path_segments": 0,
            "critical_path_ms": 0.0,
            "critical_path_contributors": [],
            "slowest_spans": [],
            "errors": [],
            "repeated_calls": [],
            "gaps": [],
            "genai": None,
        }
    tree = tree_of(columns)
    start = min(starts)
    total = max(max(ends) - start, 1)
    durations = list(map(operator.sub, ends, starts))
    path = critical_path(tree)
    on_path = list(map(operator.sub, path.finishes, path.begins))
    longest = heapq.nlargest(PATH_SEGMENTS, range(len(on_path)), key=on_path.__getitem__)
    details = columns["details"].values()
    return {
        "trace_id": columns["trace_id"],
        "duration_ms": total / NS_PER_MS,
        "span_count": len(starts),
        "sequential": _sequential(tree),
        "critical_path": [_segment(columns, path, i, start) for i in sorted(longest, key=path.begins.__getitem__)],
        "critical_path_segments": len(on_path),
        "critical_path_ms": sum(on_path) / NS_PER_MS,
        "critical_path_contributors": _contributors(columns["names"], path, on_path, total),
        "slowest_spans": _slowest(columns, _self_times(tree, durations), total),
        "errors": [
            _error(span)
            for span in details
            if span["status"]["code"] == ERROR or (span.get("events") and _exceptions(span))
        ],
        "repeated_calls": _repeated(columns, tree, durations),
        "gaps": _gaps(columns, tree, start, total),
        "genai": genai_analysis(list(details), start, total, settings.slow_llm_call_ms),
    }


def _sequential(tree: Tree) -> bool:
    """Whether nothing ran in parallel: no two children of one parent (or two roots) overlap in time."""
    starts, ends = tree.starts, tree.ends
    for kids in tree.children.values():
        reached = None
        for kid in sorted(sorted(kids, key=ends.__getitem__), key=starts.__getitem__):
            if reached is not None and starts[kid] < reached:
                return False
            reached = max(reached or 0, ends[kid])
    return True


def _contributors(names: Sequence[str], path: Path, on_path: list[int], total: int) -> list[dict[str, Any]]:
    """The span names that hold the most of the critical path, with their share of the trace."""
    by_name: dict[str, int] = {}
    for name, ns in zip(map(names.__getitem__, path.spans), on_path, strict=True):
        by_name[name] = by_name.get(name, 0) + ns
    by_pattern: dict[str, list[int]] = {}
    for name, segments in Counter(map(names.__getitem__, path.spans)).items():
        found = by_pattern.setdefault(_pattern(name), [0, 0])
        found[0] += by_name[name]
        found[1] += segments
    ranked = sorted(by_pattern.items(), key=lambda item: (-item[1][0], item[0]))[:PATH_CONTRIBUTORS]
    return [
        {"name": name, "duration_ms": ns / NS_PER_MS, "share": round(ns / total, 4), "segments": segments}
        for name, (ns, segments) in ranked
    ]


@functools.lru_cache(maxsize=4096)
def _pattern(name: str) -> str:
    """The name with its numbers as ``*``: ``batch 7`` and ``batch 12`` are both ``batch *``."""
    return NUMBER.sub("*", name)


def _slowest(columns: TraceColumns, self_times: list[int], total: int) -> list[dict[str, Any]]:
    """The span names with the most self time, one entry each: count, total, max and the slowest span
    (the first of those with the most)."""
    by_name: dict[tuple[str, str], list[int]] = {}  # the spans of each name and service, in span order
    for index, key in enumerate(zip(columns["names"], columns["service_names"], strict=True)):
        same = by_name.get(key)
        if same is None:
            by_name[key] = [index]
        else:
            same.append(index)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for (name, service), members in by_name.items():  # in the order of their first span
        own = [self_times[index] for index in members]
        most = max(own)
        slowest = members[own.index(most)]
        key = (_pattern(name), service)
        group = groups.get(key)
        if group is None:
            groups[key] = {"span": slowest, "name": name, "count": len(members), "total": sum(own), "max": most}
            continue
        group["name"] = key[0]  # names that differ only in their numbers: the pattern says them all
        group["count"] += len(members)
        group["total"] += sum(own)
        if most > group["max"] or (most == group["max"] and slowest < group["span"]):
            group["max"], group["span"] = most, slowest
    starts = columns["starts"]
    ranked = sorted(groups.values(), key=lambda g: (-g["total"], starts[g["span"]]))[:SLOWEST]
    return [
        {
            "span_id": columns["span_ids"][group["span"]],
            "name": group["name"],
            "service_name": columns["service_names"][group["span"]],
            "count": group["count"],
            "self_ms": group["total"] / NS_PER_MS,
            "max_ms": group["max"] / NS_PER_MS,
            "share": round(group["total"] / total, 4),
        }
        for group in ranked
    ]


def _segment(columns: TraceColumns, path: Path, index: int, start: int) -> dict[str, Any]:
    span = path.spans[index]
    return {
        "span_id": columns["span_ids"][span],
        "name": columns["names"][span],
        "service_name": columns["service_names"][span],
        "start_offset_ms": (path.begins[index] - start) / NS_PER_MS,
        "duration_ms": (path.finishes[index] - path.begins[index]) / NS_PER_MS,
    }


def _self_times(tree: Tree, durations: list[int]) -> list[int]:
    """Each span's duration not covered by any of its children (clipped to the span); a leaf: all of it."""
    starts, ends = tree.starts, tree.ends
    own = [duration if duration > 0 else 0 for duration in durations]
    for parent, kids in tree.children.items():
        if parent == ROOTS:
            continue
        begin, finish = starts[parent], ends[parent]
        covered = union_length(
            (max(starts[kid], begin), min(ends[kid], finish))
            for kid in kids
            if ends[kid] > begin and starts[kid] < finish
        )
        own[parent] = int(max(0, finish - begin - covered))
    return own


def _exceptions(span: Span) -> list[str]:
    return [
        (
            f"{event['attributes'].get('exception.type', 'exception')}: "
            f"{event['attributes'].get('exception.message', '')}"
        ).strip(": ")
        for event in span.get("events", [])
        if event["name"] == "exception"
    ]


def _error(span: Span) -> dict[str, Any]:
    return {
        "span_id": span["span_id"],
        "name": span["name"],
        "service_name": span["service_name"],
        "message": span["status"]["message"],
        "exceptions": _exceptions(span),
    }


def _repeated(columns: TraceColumns, tree: Tree, durations: list[int]) -> list[dict[str, Any]]:
    """N+1 findings, one per (call name, parent name pattern): parents whose names differ only in
    their numbers are one pattern (``batch *``)."""
    names, span_ids = columns["names"], columns["span_ids"]
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for parent, kids in tree.children.items():
        calls = Counter(map(names.__getitem__, kids))
        if max(calls.values()) < REPEATED_AT_LEAST:
            continue
        spent: dict[str, int] = {}
        for kid in kids:
            spent[names[kid]] = spent.get(names[kid], 0) + durations[kid]
        parent_id, parent_name = (None, None) if parent == ROOTS else (span_ids[parent], names[parent])
        pattern = _pattern(parent_name) if parent_name is not None else None
        for name, count in calls.items():
            if count < REPEATED_AT_LEAST:
                continue
            finding = found.get((name, pattern))
            if finding is None:
                finding = found[(name, pattern)] = {
                    "parent_span_id": parent_id,
                    "parent_name": parent_name,
                    "parent_span_ids": [],
                    "name": name,
                    "count": 0,
                    "total_ms": 0.0,
                }
            elif finding["parent_name"] != parent_name:
                finding["parent_name"] = pattern  # more than one parent name: the pattern says them all
            finding["parents"] = finding.get("parents", 0) + 1
            if len(finding["parent_span_ids"]) < PARENTS_LISTED:
                finding["parent_span_ids"].append(parent_id)
            finding["count"] += count
            finding["total_ms"] += spent[name] / NS_PER_MS
    return sorted(found.values(), key=lambda r: (-r["count"], r["name"]))


def _gaps(columns: TraceColumns, tree: Tree, start: int, total: int) -> list[dict[str, Any]]:
    """Stretches inside a root span where none of its descendants ran."""
    starts, ends, children = tree.starts, tree.ends, tree.children
    found = []
    for root in children.get(ROOTS, ()):
        descendants: list[int] = []
        pending = [root]
        while pending:
            kids = children.get(pending.pop(), ())
            descendants += kids
            pending += filter(children.__contains__, kids)
        begun, ended = starts[root], ends[root]
        cursor = begun
        ran = union(zip(map(starts.__getitem__, descendants), map(ends.__getitem__, descendants), strict=True))
        for begin, finish in [*ran, (ended, ended)]:
            begin, finish = max(begin, begun), min(finish, ended)
            if begin - cursor >= max(GAP_AT_LEAST_NS, GAP_SHARE_AT_LEAST * total):
                found.append(
                    {
                        "start_offset_ms": (cursor - start) / NS_PER_MS,
                        "duration_ms": (begin - cursor) / NS_PER_MS,
                        "inside": columns["names"][root],
                    }
                )
            cursor = max(cursor, finish)
    return found
