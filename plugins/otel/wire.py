"""Split a big serialized OTLP ``ExportTraceServiceRequest`` into small ones, at span boundaries.

protobuf's ``ParseFromString`` holds the GIL for the whole message: 58-80 ms for a
17.7 MB request of 150,000 spans on a slow 2-core machine, during which the event
loop cannot answer anyone. Parsing the pieces one at a time (``MergeFromString``
appends repeated fields) holds it a millisecond or two per piece instead.

Each piece is itself a valid request: one ``ResourceSpans`` carrying its resource
and schema URL, with one ``ScopeSpans`` carrying its scope, schema URL and a run of
consecutive spans. A big resource or scope is thus repeated once per piece, which
is what OTLP means anyway: every span keeps its own resource and scope. Only the
length-delimited records of three levels are walked (one tag and one length per
span); the spans themselves are not looked into.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

RESOURCE_SPANS = 1  # ExportTraceServiceRequest.resource_spans
SCOPE_SPANS = 2  # ResourceSpans.scope_spans
SPANS = 2  # ScopeSpans.spans
LENGTH_DELIMITED = 2
SPAN_TAG = SPANS << 3 | LENGTH_DELIMITED
ATTRIBUTES = 9  # Span.attributes
ATTRIBUTE_TAG = ATTRIBUTES << 3 | LENGTH_DELIMITED
FIXED_SIZES = {1: 8, 5: 4}  # wire types fixed64 and fixed32
COPY_BYTES = 1024 * 1024
"""A span too big to parse whole is copied out of its request this much at a time (see :func:`_copied`)."""


class Malformed(ValueError):
    """Not a well-formed message at the levels walked (the caller lets protobuf say what is wrong)."""


@dataclass(frozen=True)
class SplitSpan:
    """A serialized ``Span`` walked apart: its attributes in runs, and the rest of it."""

    record: bytes | bytearray
    """The span as received."""
    head: bytes
    """Its records but its attributes: the span without attributes, once parsed."""
    runs: tuple[tuple[int, int], ...]
    """Where each run of consecutive attribute records starts and ends in :attr:`record`, in order."""

    def attribute_runs(self) -> Iterator[bytes]:
        """Each run of attribute records: a serialized ``Span`` holding only those attributes."""
        for start, end in self.runs:
            yield bytes(self.record[start:end])


def pieces(
    data: bytes | bytearray, piece_bytes: int, huge: tuple[int, int] | None = None
) -> Iterator[tuple[bytes, SplitSpan | None]]:
    """Serialized requests of about ``piece_bytes`` (or one span, if bigger) that together hold the
    spans of ``data``, each with its resource and scope (a resource or scope without spans, which
    has nothing to store, is left out). With ``huge`` = ``(huge_bytes, run_bytes)``, a span record over
    ``huge_bytes`` comes in a piece of its own, without its attributes, beside the span split into runs of
    about ``run_bytes`` (see :func:`split_span`); other pieces come with ``None``."""
    for field, start, end, record_start in _fields(data, 0, len(data), RESOURCE_SPANS):
        if field != RESOURCE_SPANS:
            yield bytes(data[record_start:end]), None  # unknown to this version: passed through whole
            continue
        head = _others(data, start, end, SCOPE_SPANS)
        for scope_field, scope_start, scope_end, _ in _fields(data, start, end, SCOPE_SPANS):
            if scope_field != SCOPE_SPANS:
                continue
            scope_head = _others(data, scope_start, scope_end, SPANS)
            for run_start, run_end in _runs(data, scope_start, scope_end, piece_bytes):
                split = None
                if huge is not None and run_end - run_start > huge[0]:
                    length, value_start = _varint(data, _varint(data, run_start, run_end)[1], run_end)
                    if value_start + length == run_end:  # one span, not a run of several
                        split = split_span(_copied(data, value_start, run_end), huge[1])
                run = _record(SPANS, split.head) if split is not None else bytes(data[run_start:run_end])
                scope_spans = _record(SCOPE_SPANS, scope_head + run)
                yield _record(RESOURCE_SPANS, head + scope_spans), split


def _copied(data: bytes | bytearray, start: int, end: int) -> bytearray:
    """``data[start:end]`` copied :data:`COPY_BYTES` at a time, so that the GIL can pass between the pieces.
    Copied in one go, a span of 30 MB held the GIL for 33 ms on a slow machine, mostly faulting in the fresh
    memory (and ``bytes(data[start:end])`` copied twice: 64-70 ms), while the event loop waited."""
    copy = bytearray(end - start)  # fresh pages, zeroed by the kernel as each piece first touches them
    with memoryview(copy) as into, memoryview(data) as source:
        for offset in range(0, end - start, COPY_BYTES):
            into[offset : offset + COPY_BYTES] = source[start + offset : min(end, start + offset + COPY_BYTES)]
    return copy


def split_span(record: bytes | bytearray, run_bytes: int) -> SplitSpan:
    """Walk a serialized ``Span`` into its other records and runs of about ``run_bytes`` of its attributes.

    One pass per attribute, so an attribute record is read inline; any other record goes through
    :func:`_fields`' general reading (an attribute record of another wire type than protobuf's own
    is among the others, where protobuf keeps it as an unknown field, as it does in the whole span).
    """
    head: list[bytes | bytearray] = []
    runs: list[tuple[int, int]] = []
    run_start = run_end = -1
    position, end = 0, len(record)
    while position < end:
        record_start = position
        if record[position] == ATTRIBUTE_TAG:
            length, position = _varint(record, position + 1, end)
            position += length
            if position > end:
                raise Malformed(f"bad record at byte {record_start}")
            if run_start >= 0 and (record_start != run_end or position - run_start > run_bytes):
                runs.append((run_start, run_end))
                run_start = -1
            if run_start < 0:
                run_start = record_start
            run_end = position
        else:
            _, _, position, _ = next(_fields(record, position, end, ATTRIBUTES))
            head.append(record[record_start:position])
    if run_start >= 0:
        runs.append((run_start, run_end))
    return SplitSpan(record, b"".join(head), tuple(runs))


def _runs(data: bytes | bytearray, start: int, end: int, piece_bytes: int) -> Iterator[tuple[int, int]]:
    """Where the span records of one ``ScopeSpans`` start and end, in consecutive runs of about ``piece_bytes``.

    The hot loop of the walk (one pass per span), so a span record is read inline; any other
    record goes through :func:`_fields`' general reading.
    """
    run_start = run_end = -1
    position = start
    while position < end:
        record_start = position
        if data[position] == SPAN_TAG:
            length, position = _varint(data, position + 1, end)
            field, record_end = SPANS, position + length
            if record_end > end:
                raise Malformed(f"bad record at byte {record_start}")
        else:
            field, _, record_end, _ = next(_fields(data, position, end, SPANS))
        position = record_end
        if field != SPANS:
            continue
        if run_start >= 0 and (record_start != run_end or record_end - run_start > piece_bytes):
            yield run_start, run_end
            run_start = -1
        if run_start < 0:
            run_start = record_start
        run_end = record_end
    if run_start >= 0:
        yield run_start, run_end


def _others(data: bytes | bytearray, start: int, end: int, skipped: int) -> bytes:
    """The records of a message but those of field ``skipped``, as bytes."""
    return b"".join(
        data[record_start:record_end]
        for field, _, record_end, record_start in _fields(data, start, end, skipped)
        if field != skipped
    )


def _fields(data: bytes | bytearray, start: int, end: int, message_field: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, value start, record end, record start)`` of each record in ``data[start:end]``;
    the value is the payload of a length-delimited record, which ``message_field``'s must be."""
    position = start
    while position < end:
        record_start = position
        tag, position = _varint(data, position, end)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == LENGTH_DELIMITED:
            length, position = _varint(data, position, end)
            value_start, position = position, position + length
        elif wire_type == 0:
            value_start = position
            _, position = _varint(data, position, end)
        elif wire_type in FIXED_SIZES:
            value_start, position = position, position + FIXED_SIZES[wire_type]
        else:
            raise Malformed(f"wire type {wire_type} at byte {record_start}")
        if field == 0 or position > end or (field == message_field and wire_type != LENGTH_DELIMITED):
            raise Malformed(f"bad record at byte {record_start}")
        yield field, value_start, position, record_start


def _varint(data: bytes | bytearray, position: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while position < end and shift < 64:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    raise Malformed(f"bad varint ending at byte {position}")


def _record(field: int, value: bytes) -> bytes:
    """A length-delimited record of ``field`` holding ``value``."""
    return _encode_varint(field << 3 | LENGTH_DELIMITED) + _encode_varint(len(value)) + value


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
