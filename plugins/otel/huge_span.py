"""A span too big to parse whole (a million attributes): read a run of its attributes at a time.

protobuf's parse (and serialization) of one message is one C call that holds the GIL: 0.2 to
0.6 s for one span of 1.8 M attributes (28 MiB) on a slow 2-core machine, during which the
event loop answers nobody. A span record bigger than :data:`HUGE_SPAN_BYTES` is therefore
walked at the wire level (:func:`.wire.split_span`, Python that lets the GIL go) into the span
without its attributes, parsed in one small call, and runs of about :data:`ATTRIBUTE_RUN_BYTES`
of attribute records, each parsed as a fresh small ``Span``, used and dropped. (Merging the runs
into one message instead grows one repeated field: single merges took up to 378 ms.) The span
is stored as received, so it is never serialized whole either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from . import wire

HUGE_SPAN_BYTES = 2 * 1024 * 1024
"""A span record bigger than this is read a run of attributes at a time (parsed whole, ~10 ms of holding the GIL)."""
ATTRIBUTE_RUN_BYTES = 128 * 1024
"""Attribute records parsed per call: about 10,000 small attributes, a millisecond or two."""


def is_huge(record: bytes | bytearray) -> bool:
    """Whether a serialized span is read a run of attributes at a time."""
    return len(record) > HUGE_SPAN_BYTES


def split(record: bytes) -> wire.SplitSpan:
    """A stored span walked apart (raises :class:`.wire.Malformed` on a damaged record)."""
    return wire.split_span(record, ATTRIBUTE_RUN_BYTES)


def head(parts: wire.SplitSpan) -> Span:
    """The span without its attributes."""
    return Span.FromString(parts.head)


def attribute_runs(parts: wire.SplitSpan) -> Iterator[Any]:
    """The span's attributes, a run at a time (each a repeated ``KeyValue`` field of a fresh small message);
    a damaged run raises protobuf's ``DecodeError``, as parsing the whole span would."""
    for run in parts.attribute_runs():
        yield Span.FromString(run).attributes
