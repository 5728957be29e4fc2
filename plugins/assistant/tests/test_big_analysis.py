"""The analysis of the issue's 5,001-span batch trace (50 batches of 99 records, one failing),
stored by the otel plugin: it fits on one screen and names the N+1 pattern once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.testing import batch_span_id, batch_trace, post_otlp, serve_in_thread

TRACE = bytes.fromhex("5c1e0b0a2f4d4e7f9a1b2c3d4e5f6071")


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "assistant"])) as url:
        post_otlp(url, batch_trace(TRACE))
        yield url


def test_the_batch_trace_reads_well(base: str) -> None:
    answer = httpx.post(f"{base}/api/assistant/analyze", json={"trace_id": TRACE.hex()}, timeout=120)
    assert answer.status_code == 200
    analysis = answer.json()
    assert analysis["span_count"] == 5001 and analysis["sequential"]

    # one N+1 finding for the pattern, with its counts and total time
    [repeat] = analysis["repeated_calls"]
    assert (repeat["name"], repeat["parent_name"], repeat["parents"], repeat["count"]) == (
        "process record",
        "batch *",
        50,
        4950,
    )
    assert repeat["total_ms"] == pytest.approx(4950.0)
    assert repeat["parent_span_ids"][:2] == [batch_span_id(2), batch_span_id(2 + 100)]

    # slowest spans: one line per name
    slowest = {(s["name"], s["count"]) for s in analysis["slowest_spans"]}
    assert ("process record", 4950) in slowest
    assert len({s["name"] for s in analysis["slowest_spans"]}) == len(analysis["slowest_spans"])
    record = next(s for s in analysis["slowest_spans"] if s["name"] == "process record")
    assert record["self_ms"] == pytest.approx(4950.0) and record["max_ms"] == pytest.approx(1.0)

    [error] = analysis["errors"]
    assert error["message"] == "could not parse record rec-37-57"
    assert analysis["critical_path_contributors"][0]["name"] == "process record"
    assert len(analysis["critical_path"]) <= 1000

    text = answer.json()["text"].splitlines()
    assert len(text) <= 12, text  # one screen
    assert text[1] == "Sequential: nothing ran in parallel, so the critical path is the whole trace (5000.0 ms)."
    assert [line for line in text if line.startswith("Repeated")] == [
        "Repeated: process record called 4950 times under 50 spans named batch * (4950.0 ms in all; an N+1 pattern?)"
    ]
    assert "batch * x50 50.0 ms in all (1%), at most 1.0 ms" in text[2]
