"""The analysis of a huge trace runs off the event loop: the server answers others meanwhile (issue 12)."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from core.testing import serve_in_thread

from . import bigtrace


def test_health_answers_while_a_huge_trace_is_analysed(make_app: Any, register_plugin: Any) -> None:
    register_plugin(bigtrace)
    bigtrace.asked.clear()
    bigtrace.collector_on.clear()
    bigtrace.release.clear()
    with serve_in_thread(make_app(["assistant", bigtrace])) as base:
        answer: dict[str, Any] = {}

        def analyse() -> None:
            answer["response"] = httpx.post(
                f"{base}/api/assistant/analyze", json={"trace_id": bigtrace.big()["trace_id"]}, timeout=300
            )

        worker = threading.Thread(target=analyse)
        worker.start()
        try:
            assert bigtrace.asked.wait(60), "the assistant never read the trace"
            # the analysis now waits for the release: on the event loop, /health could not answer (timeout)
            with httpx.Client(base_url=base, timeout=20) as client:
                for _ in range(3):
                    assert client.get("/health").status_code == 200
            assert "response" not in answer
        finally:
            bigtrace.release.set()
            worker.join()
    assert bigtrace.collector_on == [False]  # paused: full collections would stall the loop
    response = answer["response"]
    assert response.status_code == 200
    analysis = response.json()
    assert analysis["span_count"] == bigtrace.SPANS
    assert analysis["critical_path_ms"] == analysis["duration_ms"]
