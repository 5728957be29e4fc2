"""The analysis over columns says what the analysis over span dicts said, on traces of every shape."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from core.testing import batch_trace, post_otlp, serve_in_thread
from plugins.assistant.analysis import analyse, analyse_columns
from plugins.assistant.settings import Settings

from .otlp import exporting
from .spans import span, trace
from .test_genai import _agent_with_a_retried_call, chat, tool

EXCEPTION = {
    "name": "exception",
    "time_unix_nano": 0,
    "attributes": {"exception.type": "KeyError", "exception.message": "x"},
}


def shapes() -> dict[str, dict[str, Any]]:
    rng = random.Random(26)
    parallel = [span("root", 0, 100)] + [
        span(f"p{i}", rng.uniform(0, 60), rng.uniform(60, 120), "root", name=f"fetch {i % 3}") for i in range(40)
    ]
    nested = [span("s0", 0, 1000)] + [
        span(f"s{i}", i, 1000 - i * 1.5, f"s{i // 2}", name=f"step {i % 4}") for i in range(1, 200)
    ]
    errors = [
        span("root", 0, 50),
        span("bad", 5, 10, "root", error=True),
        span("raised", 10, 20, "root", events=[EXCEPTION]),
        span("fine", 20, 30, "root", events=[{"name": "log", "time_unix_nano": 0, "attributes": {}}]),
        span("orphan", 40, 60, "gone"),
        span("self", 70, 70, "self"),
        span("x", 80, 90, "y"),
        span("y", 80, 90, "x"),
        span("late", 45, 80, "root"),
    ]
    agent = [span("agent", 0, 1000, attributes={"gen_ai.operation.name": "invoke_agent"})]
    for turn in range(4):
        agent += [
            chat(f"c{turn}", turn * 200, turn * 200 + 100, tokens=(100, 5), error=turn == 0, cost_usd=0.01),
            tool(f"t{turn}", turn * 200 + 100, turn * 200 + 150),
        ]
    batch = [span("job", 0, 5000)]
    for b in range(20):
        batch.append(span(f"b{b}", b * 250, b * 250 + 240, "job", name=f"batch {b}"))
        batch += [
            span(f"r{b}.{r}", b * 250 + r * 20, b * 250 + r * 20 + 19, f"b{b}", name="process record")
            for r in range(12)
        ]
    gaps = [span("root", 0, 1000), span("a", 0, 100, "root"), span("b", 600, 700, "root"), span("c", 650, 660, "b")]
    return {
        "parallel": trace(*parallel),
        "nested": trace(*nested),
        "errors": trace(*errors),
        "agent": trace(*agent),
        "batch": trace(*batch),
        "gaps": trace(*gaps),
        "empty": trace(),
        "instant": trace(span("only", 5, 5)),
    }


GOLDEN = Path(__file__).with_name("golden") / "shapes.json"
"""What the analysis over span dicts answered for each shape, before the analysis over columns replaced it
(the commit that brought the columns compared both on these shapes)."""


@pytest.mark.parametrize("shape", list(shapes()))
def test_the_same_analysis_as_over_span_dicts(shape: str) -> None:
    assert json.loads(json.dumps(analyse(shapes()[shape], Settings()))) == json.loads(GOLDEN.read_text())[shape]


TRACE = bytes.fromhex("5c1e0b0a2f4d4e7f9a1b2c3d4e5f6071")


def test_the_readers_columns_analyse_as_its_spans(make_app: Any) -> None:
    """A stored batch trace (an N+1 pattern, an error with an exception) and an agent's (LLM calls, one
    retried): the analysis of the reader's columns is the analysis of its lean read's spans."""
    app = make_app(["otel", "assistant"])
    with serve_in_thread(app) as url:
        post_otlp(url, batch_trace(TRACE, 5, 20, failing=(2, 7)))
        with exporting(url, "agent") as tracer:
            agent = _agent_with_a_retried_call(tracer)
        host = app.assembly.host
        reader = host.plugins.manager.hook.plughost_trace_reader(host=host)

        async def analyses(trace_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
            read = await reader.read(trace_id, workspace="default", lean=True)
            columns = await reader.columns(trace_id, workspace="default")
            return analyse_columns(columns, Settings()), analyse(read, Settings())

        batch, batch_from_spans = asyncio.run(analyses(TRACE.hex()))
        llm, llm_from_spans = asyncio.run(analyses(agent))
    assert batch == batch_from_spans and llm == llm_from_spans
    assert [error["message"] for error in batch["errors"]] == ["could not parse record rec-2-7"]
    assert [(r["name"], r["count"]) for r in batch["repeated_calls"]] == [("process record", 100)]
    assert llm["genai"]["llm_call_count"] == 2 and [r["kind"] for r in llm["genai"]["repeated_prompts"]] == ["retry"]
