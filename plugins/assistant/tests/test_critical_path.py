"""The critical path of each trace shape (Jaeger's definition; see plugins/assistant/critical_path.py)."""

from __future__ import annotations

from typing import Any

from plugins.assistant.critical_path import critical_path
from plugins.assistant.tree import columns_of, tree_of

from .spans import MS, span, trace


def path(*spans: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(span id, begin ms, end ms) of each segment, in time order."""
    found = critical_path(tree_of(columns_of(trace(*spans))))
    return [
        (spans[index]["span_id"], begin / MS, finish / MS)
        for index, begin, finish in zip(found.spans, found.begins, found.finishes, strict=True)
    ]


def on_path(*spans: dict[str, Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for span_id, begin, end in path(*spans):
        totals[span_id] = totals.get(span_id, 0) + end - begin
    return totals


def test_sequential_children_are_all_on_the_path() -> None:
    # the trace: GET /checkout, whose children run one after another; 'reserve' sets most of the total
    assert path(
        span("checkout", 0, 100),
        span("auth", 1, 5, "checkout"),
        span("reserve", 5, 85, "checkout"),
        span("charge", 85, 98, "checkout"),
        span("consume", 98.3, 98.3, "checkout"),
    ) == [
        ("checkout", 0, 1),
        ("auth", 1, 5),
        ("reserve", 5, 85),
        ("charge", 85, 98),
        ("checkout", 98, 98.3),
        ("consume", 98.3, 98.3),
        ("checkout", 98.3, 100),  # an instant span is a point on the path
    ]


def test_an_overlapping_child_is_cut_at_the_start_of_the_later_one() -> None:
    assert path(span("root", 0, 100), span("a", 10, 50, "root"), span("b", 40, 90, "root")) == [
        ("root", 0, 10),
        ("a", 10, 40),
        ("b", 40, 90),
        ("root", 90, 100),
    ]


def test_a_child_wholly_inside_a_later_ones_time_is_not_on_the_path() -> None:
    assert on_path(span("root", 0, 100), span("long", 10, 90, "root"), span("short", 20, 30, "root")) == {
        "root": 20,
        "long": 80,
    }


def test_nested_children_are_walked_into() -> None:
    assert path(
        span("root", 0, 100),
        span("handler", 10, 90, "root"),
        span("query", 20, 50, "handler"),
        span("render", 50, 80, "handler"),
        span("template", 55, 75, "render"),
    ) == [
        ("root", 0, 10),
        ("handler", 10, 20),
        ("query", 20, 50),
        ("render", 50, 55),
        ("template", 55, 75),
        ("render", 75, 80),
        ("handler", 80, 90),
        ("root", 90, 100),
    ]


def test_a_child_that_outlives_its_parent_is_clipped_to_the_parents_end() -> None:
    assert path(
        span("root", 0, 100),
        span("work", 10, 60, "root"),
        span("async", 70, 400, "root"),
        span("late", 150, 200, "async"),
    ) == [
        ("root", 0, 10),
        ("work", 10, 60),
        ("root", 60, 70),
        ("async", 70, 100),
    ]


def test_a_child_that_starts_before_its_parent_is_clipped_to_the_parents_start() -> None:
    assert path(span("root", 10, 100), span("early", 0, 40, "root")) == [("early", 10, 40), ("root", 40, 100)]


def test_gaps_where_only_the_parent_runs_are_the_parents_own_time() -> None:
    assert on_path(span("root", 0, 100), span("a", 0, 20, "root"), span("b", 60, 80, "root")) == {
        "a": 20,
        "b": 20,
        "root": 60,
    }


def test_a_single_span_is_the_whole_path() -> None:
    assert path(span("only", 5, 25)) == [("only", 5, 25)]
    assert path(span("instant", 5, 5)) == [("instant", 5, 5)]


def test_multiple_roots_and_missing_parents_are_children_of_the_trace() -> None:
    assert path(
        span("first", 0, 40),
        span("orphan", 30, 70, "not-in-trace"),
        span("child", 35, 65, "orphan"),
        span("last", 80, 100),
    ) == [("first", 0, 30), ("orphan", 30, 35), ("child", 35, 65), ("orphan", 65, 70), ("last", 80, 100)]


def test_parents_that_loop_or_point_at_themselves() -> None:
    assert path(span("self", 0, 10, "self"), span("x", 20, 30, "y"), span("y", 20, 30, "x")) == [("self", 0, 10)]


def test_the_path_sums_to_the_root_and_deep_or_wide_traces_work() -> None:
    depth = [span("s0", 0, 20_000)] + [span(f"s{i}", i, 20_000 - i, f"s{i - 1}") for i in range(1, 10_000)]
    assert sum(end - begin for _, begin, end in path(*depth)) == 20_000
    wide = [span("root", 0, 100_000)] + [span(f"c{i}", i, i + 1.5, "root") for i in range(100_000)]
    segments = path(*wide)
    assert sum(end - begin for _, begin, end in segments) == 100_000
    assert len(segments) == 100_000 and "root" not in {
        span_id for span_id, _, _ in segments
    }  # each child is cut at the next one's start
