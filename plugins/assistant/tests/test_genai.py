"""GenAI-aware analysis: LLM calls, tokens, the LLM share of the time, cost, and wasteful patterns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from genai_prices import Usage, calc_price
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Status, StatusCode

from core import StartupError
from core.testing import serve_in_thread
from plugins.assistant.report import as_text
from plugins.assistant.settings import Settings

from .otlp import exporting, trace_id_of
from .spans import MS, analyse, span, trace


def chat(
    span_id: str,
    begin: float,
    end: float,
    parent: str = "agent",
    *,
    model: str = "gpt-4o",
    tokens: tuple[int, int] = (100, 10),
    error: bool = False,
    events: list[dict[str, Any]] | None = None,
    cost_usd: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": tokens[0],
        "gen_ai.usage.output_tokens": tokens[1],
        **extra,
    }
    return span(
        span_id,
        begin,
        end,
        parent,
        name=f"chat {model}",
        attributes=attributes,
        error=error,
        events=events,
        cost_usd=cost_usd,
    )


def response_model(model: str) -> dict[str, Any]:
    """The model that answered, as ``chat(..., **response_model(model))`` attributes."""
    return {"gen_ai.response.model": model}


def tool(
    span_id: str, begin: float, end: float, name: str = "search", arguments: str | None = '{"q": "weather"}'
) -> dict[str, Any]:
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    if arguments is not None:
        attributes["gen_ai.tool.call.arguments"] = arguments
    return span(span_id, begin, end, "agent", name=f"execute_tool {name}", attributes=attributes)


def test_llm_calls_models_tokens_and_the_share_of_time_counts_overlap_once() -> None:
    analysis = analyse(
        trace(
            span(
                "agent", 0, 1000, attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 999}
            ),
            chat("c1", 0, 400, tokens=(1000, 50)),
            chat("c2", 200, 600, model="claude-sonnet", tokens=(2000, 80), **response_model("claude-sonnet-4")),
            span(
                "legacy",
                700,
                800,
                "agent",
                attributes={
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-3.5",
                    "gen_ai.usage.prompt_tokens": 7,
                    "gen_ai.usage.completion_tokens": 3,
                },
            ),
            span("db", 800, 900, "agent"),
        ),
        Settings(),
    )
    genai = analysis["genai"]
    assert [c["span_id"] for c in genai["llm_calls"]] == [
        "c1",
        "c2",
        "legacy",
    ]  # not the agent span: its tokens are its calls'
    assert genai["models"] == ["claude-sonnet-4", "gpt-3.5", "gpt-4o"]
    assert (genai["input_tokens"], genai["output_tokens"]) == (3007, 133)
    assert genai["llm_time_ms"] == pytest.approx(700)  # 0-600 (overlapping calls once) + 700-800
    assert genai["llm_share"] == pytest.approx(0.7)
    assert genai["cost"] is None and genai["unpriced_models"] == ["claude-sonnet-4", "gpt-3.5", "gpt-4o"]
    assert (
        "LLM: 3 calls (claude-sonnet-4, gpt-3.5, gpt-4o), 3007 input and 133 output tokens, "
        "700.0 ms in LLM calls (70% of the trace)" in as_text(analysis)
    )


def test_a_trace_without_genai_spans_has_no_genai_section() -> None:
    assert analyse(trace(span("root", 0, 10)), Settings())["genai"] is None


def test_the_calls_costs_add_up_to_the_traces() -> None:
    """Each call costs what the trace store priced it at (its ``cost_usd``); a call without one is unpriced."""
    genai = analyse(
        trace(
            span("agent", 0, 1000),
            chat("c1", 0, 100, tokens=(1_000_000, 100_000), cost_usd=3.5),
            chat(
                "c2",
                100,
                200,
                model="claude-sonnet",
                tokens=(2000, 1000),
                cost_usd=0.021,
                **response_model("claude-sonnet-4"),
            ),
            chat("c3", 200, 300, model="mystery", tokens=(5, 5)),
        ),
        Settings(),
    )["genai"]
    assert [c["cost"] for c in genai["llm_calls"]] == [3.5, 0.021, None]
    assert genai["cost"] == pytest.approx(3.521) and genai["unpriced_models"] == ["mystery"]


def test_the_old_price_table_setting_says_where_it_moved(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_ASSISTANT_PRICES", '{"gpt-4o": {"input": 2.5, "output": 10}}')
    with pytest.raises(StartupError, match="PLUGHOST_ASSISTANT_PRICES.*moved to PLUGHOST_PRICES"):
        make_app(["otel", "assistant"])
    monkeypatch.delenv("PLUGHOST_ASSISTANT_PRICES")
    monkeypatch.setenv("PLUGHOST_PRICES", '{"house-llm": {"input": 2.5, "output": 10}}')
    pricing = make_app(["otel", "assistant"]).assembly.host.pricing
    assert pricing.cost(None, ["house-llm"], 1_000_000, 100_000) == 3.5


def test_slow_calls_retries_and_repeated_identical_prompts() -> None:
    prompt: dict[str, Any] = {"gen_ai.input.messages": '[{"role": "user", "content": "plan a trip"}]'}
    genai = analyse(
        trace(
            span("agent", 0, 20_000),
            chat("first", 0, 1000, error=True, **prompt),
            chat("retry", 1000, 9000, **prompt),  # the same prompt after a failure: a retry, and slow
            chat("other", 9000, 9500, **{"gen_ai.input.messages": '[{"role": "user", "content": "book it"}]'}),  # type: ignore[arg-type]
            chat(
                "same1", 10_000, 10_500, model="mini", tokens=(321, 5)
            ),  # no prompt captured: same request attributes and input size
            chat("same2", 11_000, 11_400, model="mini", tokens=(321, 9)),
            chat("grown", 12_000, 12_400, model="mini", tokens=(400, 9)),  # a grown conversation: not the same request
        ),
        Settings(slow_llm_call_ms=5000),
    )["genai"]
    assert [(c["span_id"], c["duration_ms"], c["share"]) for c in genai["slow_llm_calls"]] == [("retry", 8000, 0.4)]
    repeats = {r["kind"]: r for r in genai["repeated_prompts"]}
    assert set(repeats) == {"retry", "repeated_prompt"}
    assert repeats["retry"]["span_ids"] == ["first", "retry"] and repeats["retry"]["prompt_captured"] is True
    assert (
        repeats["repeated_prompt"]["span_ids"] == ["same1", "same2"]
        and repeats["repeated_prompt"]["prompt_captured"] is False
    )


def test_prompts_captured_as_events_are_compared_too() -> None:
    def asked(span_id: str, begin: float, text: str) -> dict[str, Any]:
        asking = [{"name": "gen_ai.user.message", "time_unix_nano": 0, "attributes": {"content": text}}]
        return chat(span_id, begin, begin + 10, tokens=(int(begin), 1), events=asking)

    genai = analyse(
        trace(span("agent", 0, 100), asked("a", 0, "hi"), asked("b", 20, "hi"), asked("c", 40, "bye")), Settings()
    )["genai"]
    assert [r["span_ids"] for r in genai["repeated_prompts"]] == [["a", "b"]]


def test_tool_call_loops() -> None:
    spans = [span("agent", 0, 1000)]
    for turn in range(4):  # chat -> search(same arguments) -> chat -> ...
        spans += [
            chat(f"c{turn}", turn * 200, turn * 200 + 100, tokens=(100 + turn, 5)),
            tool(f"t{turn}", turn * 200 + 100, turn * 200 + 150),
        ]
    spans += [tool("w1", 900, 910, "weather", None), tool("w2", 910, 920, "weather", None)]  # twice only: not a loop
    analysis = analyse(trace(*spans), Settings())
    loops = analysis["genai"]["tool_loops"]
    assert [(loop["tool"], loop["count"], loop["same_arguments"], loop["span_ids"]) for loop in loops] == [
        ("search", 4, True, ["t0", "t1", "t2", "t3"])
    ]
    assert analysis["genai"]["tool_call_count"] == 6 and analysis["genai"]["llm_call_count"] == 4
    assert (
        "Tool-call loop: search called 4 times with the same arguments under one parent (200.0 ms in all)"
        in as_text(analysis)
    )


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "assistant"])) as url:
        yield url


def _agent_with_a_retried_call(tracer: Any) -> str:
    """An agent, 1 s: a chat call 0-300 ms that fails, then the same call again 300-900 ms."""
    t0 = time.time_ns()
    root = tracer.start_span(
        "invoke_agent planner", start_time=t0, attributes={"gen_ai.operation.name": "invoke_agent"}
    )
    inside = otel_trace.set_span_in_context(root)
    for index, (begin, end, failed) in enumerate([(0, 300, True), (300, 900, False)]):
        call = tracer.start_span(
            "chat gpt-4o-mini",
            context=inside,
            start_time=t0 + begin * MS,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300 * index,
                "gen_ai.response.finish_reasons": ["stop"],
            },
        )
        if failed:
            call.set_status(Status(StatusCode.ERROR, "rate limited"))
        call.end(end_time=t0 + end * MS)
    root.end(end_time=t0 + 1000 * MS)
    return trace_id_of(root)


def test_an_llm_trace_sent_by_the_otel_sdk(base: str) -> None:
    with exporting(base, "agent") as tracer:
        trace_id = _agent_with_a_retried_call(tracer)
    analysis = httpx.post(f"{base}/api/assistant/analyze", json={"trace_id": trace_id}).json()
    genai = analysis["genai"]
    assert genai["models"] == ["gpt-4o-mini"] and genai["llm_call_count"] == 2
    assert (genai["input_tokens"], genai["output_tokens"]) == (2400, 300)
    assert genai["llm_share"] == pytest.approx(0.9)
    [listed] = httpx.get(f"{base}/api/otel/traces", params={"service": "agent"}).json()["traces"]
    failed, answered = (
        calc_price(Usage(input_tokens=1200, output_tokens=output), "gpt-4o-mini", provider_id="openai").total_price
        for output in (0, 300)
    )
    assert genai["cost"] == pytest.approx(float(failed + answered)) and genai["cost"] == listed["cost_usd"]
    assert [call["cost"] for call in genai["llm_calls"]] == [float(failed), float(answered)]
    assert genai["llm_calls"][1]["finish_reasons"] == ["stop"]
    assert [r["kind"] for r in genai["repeated_prompts"]] == ["retry"]
    assert "Retried: chat gpt-4o-mini (gpt-4o-mini) sent 2 times" in analysis["text"]


def test_the_analysis_and_the_trace_list_agree_on_every_convention(base: str) -> None:
    """An OpenInference call inside a client span that also has usage (one call seen twice), and an older
    gen_ai.* call: the assistant reads the otel plugin's facts, so it counts what the list counts."""
    with exporting(base, "mixed") as tracer:
        with tracer.start_as_current_span(
            "client chat",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.usage.input_tokens": 11,
                "gen_ai.usage.output_tokens": 7,
            },
        ) as root:
            with tracer.start_as_current_span(
                "ChatCompletion",
                attributes={
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "m-2024",
                    "llm.token_count.prompt": 11,
                    "llm.token_count.completion": 7,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "legacy",
                attributes={
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "old",
                    "gen_ai.usage.prompt_tokens": 5,
                    "gen_ai.usage.completion_tokens": 2,
                },
            ):
                pass
        trace_id = trace_id_of(root)
    listed = httpx.get(f"{base}/api/otel/traces/{trace_id}").json()
    genai = httpx.post(f"{base}/api/assistant/analyze", json={"trace_id": trace_id}).json()["genai"]
    assert (listed["llm_calls"], listed["input_tokens"], listed["output_tokens"]) == (2, 16, 9)
    assert (genai["llm_call_count"], genai["input_tokens"], genai["output_tokens"]) == (2, 16, 9)
    assert genai["models"] == ["m-2024", "old"]
