"""Unions of time intervals (ns), for shares of a duration that count overlapping work once."""

from __future__ import annotations

from collections.abc import Iterable


def union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The intervals merged where they overlap or touch, in time order."""
    merged: list[tuple[int, int]] = []
    for begin, finish in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def union_length(intervals: Iterable[tuple[int, int]]) -> int:
    """How long at least one of the intervals covers."""
    return sum(finish - begin for begin, finish in union(intervals))
