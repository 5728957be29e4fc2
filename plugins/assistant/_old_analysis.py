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

Every step is linear in the spans (plus sorts), so a huge trace costs time in
proportion; callers on the event loop run it in a thread.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections import defaultdict
from typing import Any

from ._old_critical_path import Children, Segment, children_of, critical_path
from .genai import genai_analysis
from .intervals import union, union_length
from .settings import Settings

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
    spans = trace["spans"]
    if not spans:
        return {
            "trace_id": trace["trace_id"],
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
    by_id = {span["span_id"]: span for span in spans}
    children = children_of(spans)
    start = min(span["start_time_unix_nano"] for span in spans)
    end = max(span["end_time_unix_nano"] for span in spans)
    total = max(end - start, 1)
    self_times = {
        span["span_id"]: _self_time(span, kids)
        if (kids := children.get(span["span_id"]))
        else max(0, span["end_time_unix_nano"] - span["start_time_unix_nano"])  # a leaf: all its own time
        for span in spans
    }
    segments = critical_path(spans, children)
    longest = heapq.nlargest(PATH_SEGMENTS, segments, key=lambda segment: segment.finish - segment.begin)
    path_ns = sum(segment.finish - segment.begin for segment in segments)
    return {
        "trace_id": trace["trace_id"],
        "duration_ms": total / NS_PER_MS,
        "span_count": len(spans),
        "sequential": _sequential(children),
        "critical_path": [_segment(segment, start) for segment in sorted(longest, key=lambda s: s.begin)],
        "critical_path_segments": len(segments),
        "critical_path_ms": path_ns / NS_PER_MS,
        "critical_path_contributors": _contributors(segments, total),
        "slowest_spans": _slowest(spans, self_times, total),
        "errors": [
            _error(span)
            for span in spans
            if span["status"]["code"] == "STATUS_CODE_ERROR" or (span.get("events") and _exceptions(span))
        ],
        "repeated_calls": _repeated(children, by_id),
        "gaps": _gaps(children, start, total),
        "genai": genai_analysis(spans, start, total, settings.slow_llm_call_ms),
    }


def _sequential(children: Children) -> bool:
    """Whether nothing ran in parallel: no two children of one parent (or two roots) overlap in time."""
    for kids in children.values():
        reached = None
        for kid in sorted(kids, key=lambda s: (s["start_time_unix_nano"], s["end_time_unix_nano"])):
            if reached is not None and kid["start_time_unix_nano"] < reached:
                return False
            reached = max(reached or 0, kid["end_time_unix_nano"])
    return True


def _contributors(path: list[Segment], total: int) -> list[dict[str, Any]]:
    """The span names that hold the most of the critical path, with their share of the trace."""
    by_name: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for segment in path:
        assert segment.span is not None
        found = by_name[_pattern(segment.span["name"])]
        found[0] += segment.finish - segment.begin
        found[1] += 1
    ranked = sorted(by_name.items(), key=lambda item: (-item[1][0], item[0]))[:PATH_CONTRIBUTORS]
    return [
        {"name": name, "duration_ms": ns / NS_PER_MS, "share": round(ns / total, 4), "segments": segments}
        for name, (ns, segments) in ranked
    ]


@functools.lru_cache(maxsize=4096)
def _pattern(name: str) -> str:
    """The name with its numbers as ``*``: ``batch 7`` and ``batch 12`` are both ``batch *``."""
    return NUMBER.sub("*", name)


def _slowest(spans: list[Span], self_times: dict[str, int], total: int) -> list[dict[str, Any]]:
    """The span names with the most self time, one entry each: count, total, max and the slowest span."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for span in spans:
        own = self_times[span["span_id"]]
        key = (_pattern(span["name"]), span["service_name"])
        group = groups.get(key)
        if group is None:
            groups[key] = {"span": span, "name": span["name"], "count": 1, "total": own, "max": own}
            continue
        if group["name"] != span["name"]:
            group["name"] = key[0]  # names that differ only in their numbers: the pattern says them all
        group["count"] += 1
        group["total"] += own
        if own > group["max"]:
            group["max"], group["span"] = own, span
    ranked = sorted(groups.values(), key=lambda g: (-g["total"], g["span"]["start_time_unix_nano"]))[:SLOWEST]
    return [
        {
            "span_id": group["span"]["span_id"],
            "name": group["name"],
            "service_name": group["span"]["service_name"],
            "count": group["count"],
            "self_ms": group["total"] / NS_PER_MS,
            "max_ms": group["max"] / NS_PER_MS,
            "share": round(group["total"] / total, 4),
        }
        for group in ranked
    ]


def _segment(segment: Segment, start: int) -> dict[str, Any]:
    span = segment.span
    assert span is not None
    return {
        "span_id": span["span_id"],
        "name": span["name"],
        "service_name": span["service_name"],
        "start_offset_ms": (segment.begin - start) / NS_PER_MS,
        "duration_ms": (segment.finish - segment.begin) / NS_PER_MS,
    }


def _self_time(span: Span, kids: list[Span]) -> int:
    """The span's duration not covered by any of its children (clipped to the span)."""
    begin, finish = span["start_time_unix_nano"], span["end_time_unix_nano"]
    covered = union_length(
        (max(k["start_time_unix_nano"], begin), min(k["end_time_unix_nano"], finish))
        for k in kids
        if k["end_time_unix_nano"] > begin and k["start_time_unix_nano"] < finish
    )
    return int(max(0, finish - begin - covered))


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


def _repeated(children: Children, by_id: dict[str, Span]) -> list[dict[str, Any]]:
    """N+1 findings, one per (call name, parent name pattern): parents whose names differ only in
    their numbers are one pattern (``batch *``)."""
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for parent, kids in children.items():
        by_name: dict[str, list[Span]] = defaultdict(list)
        for kid in kids:
            by_name[kid["name"]].append(kid)
        parent_name = by_id[parent]["name"] if parent else None
        pattern = _pattern(parent_name) if parent_name is not None else None
        for name, calls in by_name.items():
            if len(calls) < REPEATED_AT_LEAST:
                continue
            finding = found.get((name, pattern))
            if finding is None:
                finding = found[(name, pattern)] = {
                    "parent_span_id": parent,
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
                finding["parent_span_ids"].append(parent)
            finding["count"] += len(calls)
            finding["total_ms"] += sum(_duration(c) for c in calls) / NS_PER_MS
    return sorted(found.values(), key=lambda r: (-r["count"], r["name"]))


def _duration(span: Span) -> int:
    return int(span["end_time_unix_nano"] - span["start_time_unix_nano"])


def _gaps(children: Children, start: int, total: int) -> list[dict[str, Any]]:
    """Stretches inside a root span where none of its descendants ran."""
    found = []
    for root in children.get(None, ()):
        descendants, pending = [], list(children.get(root["span_id"], ()))
        while pending:
            span = pending.pop()
            descendants.append((span["start_time_unix_nano"], span["end_time_unix_nano"]))
            pending.extend(children.get(span["span_id"], ()))
        cursor = root["start_time_unix_nano"]
        for begin, finish in [*union(descendants), (root["end_time_unix_nano"], root["end_time_unix_nano"])]:
            begin, finish = max(begin, root["start_time_unix_nano"]), min(finish, root["end_time_unix_nano"])
            if begin - cursor >= max(GAP_AT_LEAST_NS, GAP_SHARE_AT_LEAST * total):
                found.append(
                    {
                        "start_offset_ms": (cursor - start) / NS_PER_MS,
                        "duration_ms": (begin - cursor) / NS_PER_MS,
                        "inside": root["name"],
                    }
                )
            cursor = max(cursor, finish)
    return found
