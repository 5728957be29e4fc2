"""Every LLM app's traces understood: one fixture trace per convention, on both stores (the real
instrumentations on SQLite, and one of them on PostgreSQL: a convention is read the same for each store).
The module's tests share a server per store; each sends the traces of a service of its own.

Where the instrumentation installs here, the trace is made by it, in a process of its own
(``instrumented.py``), around a real openai client calling llmock; otherwise it is built from
the attribute names of the instrumentation's own sources (the Vercel AI SDK's telemetry test
snapshot, OpenLLMetry's earlier names). Each must give the right calls, model, tokens,
messages and ``?model=`` search.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices import Usage, calc_price

from core.testing import serve_in_thread
from plugins.otel.conventions import CONVENTIONS, FACT_KEYS
from plugins.otel.tests.instrumented import MODEL, QUESTION

ROOT = Path(__file__).resolve().parents[3]
START = 1_700_000_000_000_000_000

INSTRUMENTED = ("openai-v2", "openinference", "openllmetry", "mlflow", "logfire")
"""Real instrumentations: a chat call of ``MODEL`` with ``QUESTION``, answered by llmock."""


@pytest.fixture(scope="module")
def servers(module_make_app: Any, module_databases: Callable[[str], str]) -> Iterator[Callable[[str], str]]:
    """``server(store)``: the base URL of the module's server on ``store`` (``sqlite`` or ``postgresql``),
    started on first use. Each test sends traces of a service of its own and reads only those."""
    with contextlib.ExitStack() as stack:
        started: dict[str, str] = {}

        def server(store: str) -> str:
            if store not in started:
                app = module_make_app(["otel"], {"database_url": module_databases(store)})
                started[store] = stack.enter_context(serve_in_thread(app))
            return started[store]

        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def base(request: pytest.FixtureRequest, servers: Callable[[str], str]) -> str:
    return servers(request.param)


def wait_for_trace(base: str, service: str, spans: int) -> dict[str, Any]:
    """The one trace of ``service`` once it has ``spans`` spans (exporters may send in pieces)."""
    deadline = time.monotonic() + 30
    while True:
        listed = httpx.get(f"{base}/api/otel/traces", params={"service": service}).json()["traces"]
        if listed and listed[0]["span_count"] >= spans:
            return listed[0]
        assert time.monotonic() < deadline, f"no trace of {spans} spans from {service}: {listed}"
        time.sleep(0.1)


def trace_ids(base: str, **params: Any) -> set[str]:
    response = httpx.get(f"{base}/api/otel/traces", params=params)
    assert response.status_code == 200, response.text
    return {trace["trace_id"] for trace in response.json()["traces"]}


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], part["content"]) for m in messages for part in m["parts"] if part["type"] == "text"]


@pytest.mark.parametrize(
    ("store", "instrumentation"),
    [("sqlite", instrumentation) for instrumentation in INSTRUMENTED] + [("postgresql", "openai-v2")],
)
def test_a_real_instrumentations_call_is_one_call_with_its_model_tokens_and_messages(
    servers: Callable[[str], str], llmock: Any, store: str, instrumentation: str
) -> None:
    """What a convention means is read at ingest, the same for every store: each instrumentation runs on
    SQLite, and one (with its content as OTLP logs) on PostgreSQL too, for the store's side of a real trace."""
    base = servers(store)
    subprocess.run(
        [sys.executable, "-m", "plugins.otel.tests.instrumented", instrumentation, base, llmock.base_url("openai")],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    summary = wait_for_trace(base, f"app-{instrumentation}", 1)
    assert (summary["llm_calls"], summary["input_tokens"], summary["output_tokens"]) == (1, 7, 14)
    trace = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()
    calls = [span["genai"] for span in trace["spans"] if span["genai"] and span["genai"]["counted"]]
    assert len(calls) == 1
    call = calls[0]
    assert (call["kind"], call["model"], call["input_tokens"], call["output_tokens"]) == ("llm", MODEL, 7, 14)
    price = float(calc_price(Usage(input_tokens=7, output_tokens=14), MODEL, provider_id="openai").total_price)
    assert call["cost_usd"] == price and summary["cost_usd"] == price  # genai-prices' price, whatever the convention
    assert texts(call["input_messages"]) == [("user", QUESTION)]
    [(role, answer)] = texts(call["output_messages"])
    assert role == "assistant" and QUESTION in answer  # llmock echoes the question
    assert trace_ids(base, model=MODEL) >= {summary["trace_id"]}
    assert summary["trace_id"] not in trace_ids(base, model="gpt-4o")
    assert summary["trace_id"] in trace_ids(base, min_tokens=21) and summary["trace_id"] not in trace_ids(
        base, min_tokens=22
    )


def span(span_id: int, name: str, attributes: dict[str, Any], parent: int | None = None) -> dict[str, Any]:
    """One OTLP/JSON span of trace 1 (hex ids)."""
    made: dict[str, Any] = {
        "traceId": f"{1:032x}",
        "spanId": f"{span_id:016x}",
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(START + span_id),
        "endTimeUnixNano": str(START + 10**9 - span_id),
        "attributes": [{"key": key, "value": otlp_value(value)} for key, value in attributes.items()],
    }
    if parent is not None:
        made["parentSpanId"] = f"{parent:016x}"
    return made


def otlp_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [otlp_value(item) for item in value]}}
    return {"stringValue": value}


def send(base: str, service: str, spans: list[dict[str, Any]]) -> None:
    for made in spans:
        made["traceId"] = service.encode().hex().rjust(32, "0")[-32:]
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"spans": spans}],
            }
        ]
    }
    response = httpx.post(f"{base}/v1/traces", json=body)
    assert response.status_code == 200 and "partialSuccess" not in response.json(), response.text


TOOL_CALLS = '[{"toolCallId":"call-1","toolName":"tool1","input":"{ \\"value\\": \\"value\\" }"}]'
VERCEL = [
    # The spans of generateText with a tool, as the AI SDK's own telemetry test records them.
    span(
        1,
        "ai.generateText",
        {
            "ai.model.id": "mock-model-id",
            "ai.model.provider": "mock-provider.chat",
            "ai.operationId": "ai.generateText",
            "ai.prompt": '{"prompt":"test-input"}',
            "ai.response.finishReason": "stop",
            "ai.response.toolCalls": TOOL_CALLS,
            "ai.usage.completionTokens": 10,
            "ai.usage.promptTokens": 3,
            "operation.name": "ai.generateText",
        },
    ),
    span(
        2,
        "ai.generateText.doGenerate",
        {
            "ai.model.id": "mock-model-id",
            "ai.model.provider": "mock-provider.chat",
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.prompt.messages": '[{"role":"user","content":[{"type":"text","text":"test-input"}]}]',
            "ai.response.finishReason": "stop",
            "ai.response.model": "mock-model-id",
            "ai.response.toolCalls": TOOL_CALLS,
            "ai.usage.completionTokens": 10,
            "ai.usage.promptTokens": 3,
            "gen_ai.request.model": "mock-model-id",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.response.model": "mock-model-id",
            "gen_ai.system": "mock-provider.chat",
            "gen_ai.usage.input_tokens": 3,
            "gen_ai.usage.output_tokens": 10,
            "operation.name": "ai.generateText.doGenerate",
        },
        parent=1,
    ),
    span(
        3,
        "ai.toolCall",
        {
            "ai.operationId": "ai.toolCall",
            "ai.toolCall.args": '{"value":"value"}',
            "ai.toolCall.id": "call-1",
            "ai.toolCall.name": "tool1",
            "ai.toolCall.result": '"result1"',
            "operation.name": "ai.toolCall",
        },
        parent=1,
    ),
]

LANGFUSE = [
    # A span naming its session the way Langfuse's OTLP ingestion still reads it (its attributes.ts,
    # TRACE_COMPAT_SESSION_ID), beside the OpenInference name it sets today.
    span(1, "handle message", {"langfuse.session.id": "lf-session-1", "langfuse.trace.name": "handle message"}),
]

OLDER_GEN_AI = [
    # OpenLLMetry before the current GenAI names: gen_ai.system, prompt/completion tokens, flattened messages.
    span(1, "agent run", {"traceloop.span.kind": "workflow", "traceloop.entity.name": "agent run"}),
    span(
        2,
        "openai.chat",
        {
            "llm.request.type": "chat",
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.completion_tokens": 7,
            "llm.usage.total_tokens": 18,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "You are terse.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "Weather in Paris?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "call_1",
            "gen_ai.completion.0.tool_calls.0.name": "get_weather",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
            "traceloop.association.properties.session_id": "s-42",
        },
        parent=1,
    ),
]


def test_the_vercel_ai_sdks_spans_are_one_call_and_a_tool(base: str) -> None:
    send(base, "vercel", VERCEL)
    summary = wait_for_trace(base, "vercel", 3)
    assert (summary["llm_calls"], summary["input_tokens"], summary["output_tokens"]) == (1, 3, 10)
    spans = {s["name"]: s["genai"] for s in httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()["spans"]}
    outer, call, tool = spans["ai.generateText"], spans["ai.generateText.doGenerate"], spans["ai.toolCall"]
    assert outer["counted"] is False and call["counted"] is True  # the innermost span with usage carries the call
    assert (call["model"], call["provider"], call["finish_reasons"]) == (
        "mock-model-id",
        "mock-provider.chat",
        ["stop"],
    )
    assert texts(call["input_messages"]) == [("user", "test-input")]
    assert call["output_messages"][0]["parts"] == [
        {"type": "tool_call", "id": "call-1", "name": "tool1", "arguments": {"value": "value"}}
    ]
    assert (tool["kind"], tool["tool_name"], tool["tool_arguments"], tool["tool_result"]) == (
        "tool",
        "tool1",
        {"value": "value"},
        "result1",
    )
    assert summary["trace_id"] in trace_ids(base, model="mock-model-id")


def test_the_older_gen_ai_names_give_the_call_its_tokens_and_flattened_messages(base: str) -> None:
    send(base, "older", OLDER_GEN_AI)
    summary = wait_for_trace(base, "older", 2)
    assert (summary["llm_calls"], summary["input_tokens"], summary["output_tokens"]) == (1, 11, 7)
    assert summary["session_id"] == "s-42"  # OpenLLMetry's association property
    spans = {s["name"]: s["genai"] for s in httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()["spans"]}
    call = spans["openai.chat"]
    assert (call["provider"], call["model"], call["session_id"], call["finish_reasons"]) == (
        "OpenAI",
        "gpt-4o-mini-2024-07-18",
        "s-42",
        ["tool_calls"],
    )
    assert texts(call["input_messages"]) == [("system", "You are terse."), ("user", "Weather in Paris?")]
    assert call["output_messages"] == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
            "finish_reason": "tool_calls",
        }
    ]
    assert spans["agent run"]["kind"] == "chain"
    by_model = [trace_ids(base, service="older", model=model) for model in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")]
    assert by_model == [{summary["trace_id"]}] * 2  # the request's model and the response's


MLFLOW_JSON = [
    # MLflow's span attributes (mlflow/tracing/constant.py), every value JSON-encoded as MLflow sends it.
    span(
        1,
        "ChatModel",
        {
            "mlflow.traceRequestId": '"tr-1"',
            "mlflow.spanType": '"CHAT_MODEL"',
            "mlflow.llm.model": '"claude-x"',
            "mlflow.chat.tokenUsage": '{"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}',
            "mlflow.llm.cost": '{"input_cost": 0.1, "output_cost": 0.2, "total_cost": 0.3}',
            "temperature": "0.5",
        },
    )
]


def test_a_langfuse_session_is_the_traces_session(base: str) -> None:
    send(base, "langfuse-app", LANGFUSE)
    [summary] = httpx.get(f"{base}/api/otel/traces", params={"service": "langfuse-app"}).json()["traces"]
    assert summary["session_id"] == "lf-session-1"
    assert trace_ids(base, session="lf-session-1") == {summary["trace_id"]}


def test_mlflow_values_are_decoded_for_display_and_attribute_search(base: str) -> None:
    send(base, "mlflow-json", MLFLOW_JSON)
    summary = wait_for_trace(base, "mlflow-json", 1)
    assert trace_ids(base, service="mlflow-json", **{"attr.mlflow.llm.model": "claude-x"}) == {summary["trace_id"]}
    searched = {"attr.mlflow.spanType": "CHAT_MODEL", "attr.temperature": "0.5"}
    assert trace_ids(base, service="mlflow-json", **searched) == {summary["trace_id"]}
    [shown] = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()["spans"]
    assert shown["attributes"]["mlflow.llm.model"] == "claude-x"
    assert shown["attributes"]["mlflow.chat.tokenUsage"] == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}
    assert shown["otlp"]["span"]["attributes"][2]["value"] == {"stringValue": '"claude-x"'}  # as sent
    assert (shown["genai"]["model"], shown["genai"]["cost"], summary["input_tokens"]) == ("claude-x", 0.3, 4)


def test_the_readme_table_lists_what_the_normaliser_reads() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(
        r"^\| (OpenTelemetry GenAI|OpenInference|OpenLLMetry|Vercel AI SDK|Langfuse|MLflow tracing)"
        r" \| (.+?) \| (.+?) \|$",
        readme,
        re.M,
    )
    assert {name: tuple(re.findall(r"`([^`]+)`", read)) for name, read, _ in rows} == CONVENTIONS
    listed = [
        re.compile(re.escape(key).replace(r"\.N\.", r"\.\d+\.").replace(r"\*", ".+"))
        for keys in CONVENTIONS.values()
        for key in keys
    ]
    assert [key for key in FACT_KEYS if not any(pattern.fullmatch(key) for pattern in listed)] == []
    for name, _, fixtures in rows:
        named = re.findall(r"`([^`]+)`", fixtures)
        assert named, f"{name}: no fixture"
        for fixture in named:  # a real instrumentation run by instrumented.py, or a trace built here
            assert fixture in INSTRUMENTED or isinstance(globals().get(fixture), list), f"{name}: no fixture {fixture}"


def test_nested_spans_of_one_call_count_once_and_the_call_is_the_innermost_with_usage(base: str) -> None:
    """A client's span, the gateway's SERVER span and its attempts; an agent framework's span around an SDK's."""
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    usage = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}
    send(
        base,
        "nested",
        [
            span(1, "agent", {"openinference.span.kind": "AGENT"}),
            span(2, "client chat", {**chat, **usage}, parent=1),
            span(3, "POST", {"http.method": "POST"}, parent=2),  # an HTTP client span between the two sides
            span(4, "gateway chat", {**chat, **usage}, parent=3),
            span(5, "attempt 1 (failed)", chat, parent=4),
            span(6, "attempt 2", {**chat, **usage}, parent=4),
            span(7, "framework llm", {"openinference.span.kind": "LLM", "llm.model_name": "m"}, parent=1),
            span(8, "sdk chat", {**chat, "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}, parent=7),
            span(9, "failed call", chat, parent=1),
        ],
    )
    summary = wait_for_trace(base, "nested", 9)
    assert (summary["llm_calls"], summary["input_tokens"], summary["output_tokens"]) == (3, 11, 6)
    counted = {
        s["name"]
        for s in httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()["spans"]
        if s["genai"] and s["genai"]["counted"]
    }
    assert counted == {"attempt 2", "sdk chat", "failed call"}


def test_spans_of_one_call_arriving_apart_still_count_once(base: str) -> None:
    """The link between the two sides of a call arrives last: the call is counted again then."""
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3}
    send(base, "apart", [span(1, "client", chat), span(3, "server", chat, parent=2)])
    assert wait_for_trace(base, "apart", 2)["llm_calls"] == 2  # not known yet to be one call
    send(base, "apart", [span(2, "POST", {"http.method": "POST"}, parent=1)])
    summary = wait_for_trace(base, "apart", 3)
    assert (summary["llm_calls"], summary["input_tokens"]) == (1, 3)
