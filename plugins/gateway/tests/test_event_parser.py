"""Server-sent events out of a provider's bytes, however the reads cut them."""

from __future__ import annotations

import pytest

from plugins.gateway.formats import Event
from plugins.gateway.providers import UpstreamError
from plugins.gateway.upstream import LINE_LIMIT, EventParser

STREAM = (
    'event: message_start\r\ndata: {"a": "é"}\r\n\r\n'
    ": a comment\n\ndata: one\ndata: two\n\n"
    "data: [DONE]\n\n"
    "data: no blank line at the end"
).encode()
EVENTS = [
    Event("message_start", '{"a": "é"}'),
    Event(None, "one\ntwo"),
    Event(None, "[DONE]"),
    Event(None, "no blank line at the end"),
]


def test_the_events_are_the_same_wherever_the_reads_cut_the_bytes() -> None:
    for cut in range(1, len(STREAM)):
        parser = EventParser("bench")
        found = parser.feed(STREAM[:cut]) + parser.feed(STREAM[cut:]) + parser.end()
        assert found == EVENTS, cut


def test_the_events_a_read_completes_come_together() -> None:
    parser = EventParser("bench")
    assert parser.feed(STREAM[: STREAM.index(b"data: [DONE]")]) == EVENTS[:2]


def test_an_unfinished_line_over_the_limit_is_the_providers_error() -> None:
    parser = EventParser("bench")
    assert parser.feed(b"data: " + b"x" * (LINE_LIMIT - 6)) == []  # at the limit: kept
    with pytest.raises(UpstreamError, match="bench: the provider's stream holds a line over"):
        parser.feed(b"x")
