"""Deterministic trace analysis: no LLM, the same answer for the same trace.

Input: a trace as the otel query API returns it (``spans`` with ids, parents,
names, times in ns, status, attributes and events). Output: the critical path
(see :mod:`.critical_path`), the slowest spans by self time with their share of
the whole, error spans and their messages, repeated calls under one parent (N+1),
gaps where nothing ran, and the GenAI section (see :mod:`.genai`).

Every step is linear in the spans (plus sorts), so a huge trace costs time in
proportion; callers on the event loop run it in a thread.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Any

from .critical_path import Segment, critical_path
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


def analyse(trace: dict[str, Any], settings: Settings) -> dict[str, Any]:
    spans = trace["spans"]
    if not spans:
        return {
            "trace_id": trace["trace_id"],
            "duration_ms": 0.0,
            "span_count": 0,
            "critical_path": [],
            "critical_path_ms": 0.0,
            "slowest_spans": [],
            "errors": [],
            "repeated_calls": [],
            "gaps": [],
            "genai": None,
        }
    by_id = {span["span_id"]: span for span in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in spans:
        parent = (
            span["parent_span_id"]
            if span["parent_span_id"] in by_id and span["parent_span_id"] != span["span_id"]
            else None
        )
        children[parent].append(span)
    start = min(span["start_time_unix_nano"] for span in spans)
    end = max(span["end_time_unix_nano"] for span in spans)
    total = max(end - start, 1)
    self_times = {span["span_id"]: _self_time(span, children[span["span_id"]]) for span in spans}
    path = [_segment(segment, start) for segment in critical_path(spans)]
    slowest = heapq.nsmallest(
        SLOWEST, spans, key=lambda s: (-self_times[s["span_id"]], s["start_time_unix_nano"], s["span_id"])
    )
    return {
        "trace_id": trace["trace_id"],
        "duration_ms": total / NS_PER_MS,
        "span_count": len(spans),
        "critical_path": path,
        "critical_path_ms": sum(step["duration_ms"] for step in path),
        "slowest_spans": [
            {
                "span_id": span["span_id"],
                "name": span["name"],
                "service_name": span["service_name"],
                "self_ms": self_times[span["span_id"]] / NS_PER_MS,
                "share": round(self_times[span["span_id"]] / total, 4),
            }
            for span in slowest
        ],
        "errors": [
            _error(span) for span in spans if span["status"]["code"] == "STATUS_CODE_ERROR" or _exceptions(span)
        ],
        "repeated_calls": _repeated(children, by_id),
        "gaps": _gaps(children, start, total),
        "genai": genai_analysis(spans, start, total, settings.prices, settings.slow_llm_call_ms),
    }


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


def _repeated(children: dict[str | None, list[Span]], by_id: dict[str, Span]) -> list[dict[str, Any]]:
    found = []
    for parent, kids in children.items():
        by_name: dict[str, list[Span]] = defaultdict(list)
        for kid in kids:
            by_name[kid["name"]].append(kid)
        for name, calls in by_name.items():
            if len(calls) >= REPEATED_AT_LEAST:
                found.append(
                    {
                        "parent_span_id": parent,
                        "parent_name": by_id[parent]["name"] if parent else None,
                        "name": name,
                        "count": len(calls),
                        "total_ms": sum(_duration(c) for c in calls) / NS_PER_MS,
                    }
                )
    return sorted(found, key=lambda r: (-r["count"], r["name"]))


def _duration(span: Span) -> int:
    return int(span["end_time_unix_nano"] - span["start_time_unix_nano"])


def _gaps(children: dict[str | None, list[Span]], start: int, total: int) -> list[dict[str, Any]]:
    """Stretches inside a root span where none of its descendants ran."""
    found = []
    for root in children[None]:
        descendants, pending = [], list(children[root["span_id"]])
        while pending:
            span = pending.pop()
            descendants.append((span["start_time_unix_nano"], span["end_time_unix_nano"]))
            pending.extend(children[span["span_id"]])
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
