"""Deterministic trace analysis: no LLM, the same answer for the same trace.

Input: a trace as the otel query API returns it (``spans`` with ids, parents,
names, times in ns, status and events). Output: the critical path, the slowest
spans by self time with their share of the whole, error spans and their
messages, repeated calls under one parent (N+1), and gaps where nothing ran.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

NS_PER_MS = 1_000_000
SLOWEST = 5
REPEATED_AT_LEAST = 5
GAP_AT_LEAST_NS = NS_PER_MS
GAP_SHARE_AT_LEAST = 0.05


def analyse(trace: dict[str, Any]) -> dict[str, Any]:
    spans = trace["spans"]
    by_id = {span["span_id"]: span for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in by_id else None
        children[parent].append(span)
    start = min(span["start_time_unix_nano"] for span in spans)
    end = max(span["end_time_unix_nano"] for span in spans)
    total = max(end - start, 1)
    self_times = {span["span_id"]: _self_time(span, children[span["span_id"]]) for span in spans}
    return {
        "trace_id": trace["trace_id"],
        "duration_ms": total / NS_PER_MS,
        "span_count": len(spans),
        "critical_path": _critical_path(children, self_times, start),
        "slowest_spans": [
            {
                "span_id": span["span_id"], "name": span["name"], "service_name": span["service_name"],
                "self_ms": self_times[span["span_id"]] / NS_PER_MS, "share": round(self_times[span["span_id"]] / total, 4),
            }
            for span in sorted(spans, key=lambda s: (-self_times[s["span_id"]], s["start_time_unix_nano"]))[:SLOWEST]
        ],
        "errors": [_error(span) for span in spans if span["status"]["code"] == "STATUS_CODE_ERROR" or _exceptions(span)],
        "repeated_calls": _repeated(children, by_id),
        "gaps": _gaps(spans, children[None], start, total),
    }


def _duration(span: dict[str, Any]) -> int:
    return int(span["end_time_unix_nano"] - span["start_time_unix_nano"])


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, finish in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _self_time(span: dict[str, Any], kids: list[dict[str, Any]]) -> int:
    """The span's duration not covered by any of its children (clipped to the span)."""
    begin, finish = span["start_time_unix_nano"], span["end_time_unix_nano"]
    covered = sum(b - a for a, b in _union([(max(k["start_time_unix_nano"], begin), min(k["end_time_unix_nano"], finish)) for k in kids if k["end_time_unix_nano"] > begin and k["start_time_unix_nano"] < finish]))
    return max(0, finish - begin - covered)


def _critical_path(children: dict[str | None, list[dict[str, Any]]], self_times: dict[str, int], start: int) -> list[dict[str, Any]]:
    """From the longest root, repeatedly to the child that finishes last: what the end waited on."""
    roots = children[None]
    if not roots:
        return []
    span = max(roots, key=lambda s: (_duration(s), s["span_id"]))
    path = []
    while span is not None:
        path.append({
            "span_id": span["span_id"], "name": span["name"], "service_name": span["service_name"],
            "start_offset_ms": (span["start_time_unix_nano"] - start) / NS_PER_MS,
            "duration_ms": _duration(span) / NS_PER_MS, "self_ms": self_times[span["span_id"]] / NS_PER_MS,
        })
        kids = children[span["span_id"]]
        span = max(kids, key=lambda s: (s["end_time_unix_nano"], s["span_id"])) if kids else None
    return path


def _exceptions(span: dict[str, Any]) -> list[str]:
    return [
        f"{event['attributes'].get('exception.type', 'exception')}: {event['attributes'].get('exception.message', '')}".strip(": ")
        for event in span.get("events", [])
        if event["name"] == "exception"
    ]


def _error(span: dict[str, Any]) -> dict[str, Any]:
    return {
        "span_id": span["span_id"], "name": span["name"], "service_name": span["service_name"],
        "message": span["status"]["message"], "exceptions": _exceptions(span),
    }


def _repeated(children: dict[str | None, list[dict[str, Any]]], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for parent, kids in children.items():
        by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for kid in kids:
            by_name[kid["name"]].append(kid)
        for name, calls in by_name.items():
            if len(calls) >= REPEATED_AT_LEAST:
                found.append({
                    "parent_span_id": parent, "parent_name": by_id[parent]["name"] if parent else None, "name": name,
                    "count": len(calls), "total_ms": sum(_duration(c) for c in calls) / NS_PER_MS,
                })
    return sorted(found, key=lambda r: (-r["count"], r["name"]))


def _gaps(spans: list[dict[str, Any]], roots: list[dict[str, Any]], start: int, total: int) -> list[dict[str, Any]]:
    """Stretches inside a root span where none of its descendants ran."""
    root_ids = {root["span_id"] for root in roots}
    work = _union([(s["start_time_unix_nano"], s["end_time_unix_nano"]) for s in spans if s["span_id"] not in root_ids])
    found = []
    for root in roots:
        cursor = root["start_time_unix_nano"]
        for begin, finish in [*work, (root["end_time_unix_nano"], root["end_time_unix_nano"])]:
            begin, finish = max(begin, root["start_time_unix_nano"]), min(finish, root["end_time_unix_nano"])
            if begin - cursor >= max(GAP_AT_LEAST_NS, GAP_SHARE_AT_LEAST * total):
                found.append({"start_offset_ms": (cursor - start) / NS_PER_MS, "duration_ms": (begin - cursor) / NS_PER_MS, "inside": root["name"]})
            cursor = max(cursor, finish)
    return found


def as_text(analysis: dict[str, Any]) -> str:
    """The analysis as a short readable report."""
    lines = [f"Trace {analysis['trace_id']}: {analysis['duration_ms']:.1f} ms, {analysis['span_count']} spans."]
    lines.append("Critical path: " + " -> ".join(f"{s['name']} ({s['duration_ms']:.1f} ms)" for s in analysis["critical_path"]))
    lines.append("Slowest by own time: " + "; ".join(f"{s['name']} {s['self_ms']:.1f} ms ({s['share']:.0%})" for s in analysis["slowest_spans"]))
    for error in analysis["errors"]:
        detail = "; ".join(filter(None, [error["message"], *error["exceptions"]])) or "no message"
        lines.append(f"Error in {error['name']} ({error['service_name']}): {detail}")
    for repeat in analysis["repeated_calls"]:
        lines.append(f"Repeated: {repeat['name']} called {repeat['count']} times under {repeat['parent_name'] or 'the root'} ({repeat['total_ms']:.1f} ms in all; an N+1 pattern?)")
    for gap in analysis["gaps"]:
        lines.append(f"Gap: nothing ran for {gap['duration_ms']:.1f} ms at +{gap['start_offset_ms']:.1f} ms inside {gap['inside']}")
    return "\n".join(lines)
