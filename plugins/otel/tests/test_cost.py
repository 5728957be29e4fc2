"""What LLM calls cost, on both stores: traces sent by the OpenTelemetry SDK's OTLP/HTTP exporter, priced at
ingest by genai-prices (or ``PLUGHOST_PRICES`` for a private model), summed per trace, and shown in the
list, the trace, the span and the skeleton. Expected prices are genai-prices' own for the same usage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from genai_prices import Usage, calc_price
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.util.types import AnyValue

from core.testing import serve_in_thread
from plugins.otel.skeleton import FIELDS, FLAG_MODEL_CALL, FLAG_NOT_COUNTED

HOUSE_PRICE = {"input": 3.0, "output": 9.0, "cached_input": 0.5}
"""``PLUGHOST_PRICES`` for a private model, per million tokens."""

Attributes = dict[str, AnyValue]

GPT_4O: Attributes = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 200,
}
OPENINFERENCE_MINI: Attributes = {
    "openinference.span.kind": "LLM",
    "llm.provider": "openai",
    "llm.model_name": "gpt-4o-mini",
    "llm.token_count.prompt": 500,
    "llm.token_count.completion": 50,
}
HOUSE: Attributes = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "house-llm",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
    "gen_ai.usage.cache_read.input_tokens": 400,
}
CLAUDE_CACHE_WRITE: Attributes = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 3000,
    "gen_ai.usage.output_tokens": 100,
    "gen_ai.usage.cache_read.input_tokens": 500,
    "gen_ai.usage.cache_creation.input_tokens": 2000,
}
OPENINFERENCE_CACHE_WRITE: Attributes = {
    "openinference.span.kind": "LLM",
    "llm.provider": "anthropic",
    "llm.model_name": "claude-sonnet-4-5",
    "llm.token_count.prompt": 3000,
    "llm.token_count.completion": 100,
    "llm.token_count.prompt_details.cache_write": 2000,
}
UNKNOWN: Attributes = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "acme-unreleased-9",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.usage.output_tokens": 5,
}


@pytest.fixture
def base(make_app: Any, database_url: str) -> Iterator[str]:
    settings = {"database_url": database_url, "prices": {"house-llm": HOUSE_PRICE}}
    with serve_in_thread(make_app(["otel"], settings)) as url:
        yield url


def send(base: str, service: str, calls: list[tuple[str, Attributes]]) -> dict[str, int]:
    """One trace of ``service``: a root span with the ``calls`` below it, through the SDK's exporter;
    returns each call's start (ns)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    tracer = provider.get_tracer("app")
    starts = {}
    with tracer.start_as_current_span("answer"):
        for name, attributes in calls:
            with tracer.start_as_current_span(name, attributes=attributes) as span:
                starts[name] = span.start_time  # type: ignore[attr-defined]
    provider.shutdown()
    return starts


def genai_price(usage: Usage, model: str, provider: str, start_ns: int) -> float:
    when = datetime.fromtimestamp(start_ns / 1e9, UTC)
    return float(calc_price(usage, model, provider_id=provider, genai_request_timestamp=when).total_price)


def listed(base: str, service: str) -> dict[str, Any]:
    [trace] = httpx.get(f"{base}/api/otel/traces", params={"service": service}).json()["traces"]
    return trace


def test_each_call_costs_what_genai_prices_says_and_the_trace_sums_them(base: str) -> None:
    starts = send(base, "priced", [("chat gpt-4o", GPT_4O), ("ChatCompletion", OPENINFERENCE_MINI), ("house", HOUSE)])
    expected = {
        "chat gpt-4o": genai_price(
            Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200),
            "gpt-4o-2024-08-06",
            "openai",
            starts["chat gpt-4o"],
        ),
        "ChatCompletion": genai_price(
            Usage(input_tokens=500, output_tokens=50), "gpt-4o-mini", "openai", starts["ChatCompletion"]
        ),
        "house": (600 * 3.0 + 400 * 0.5 + 100 * 9.0) / 1_000_000,
    }
    assert expected["chat gpt-4o"] > 0 and expected["ChatCompletion"] > 0
    summary = listed(base, "priced")
    assert summary["cost_usd"] == pytest.approx(sum(expected.values()), rel=1e-12)
    trace = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()
    assert trace["cost_usd"] == summary["cost_usd"]
    by_name = {span["name"]: span for span in trace["spans"]}
    assert by_name["answer"]["genai"] is None
    for name, cost in expected.items():
        assert by_name[name]["genai"]["cost_usd"] == cost, name
        one = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}/spans/{by_name[name]['span_id']}").json()
        assert one["genai"]["cost_usd"] == cost, name
    skeleton = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}/skeleton").json()
    assert skeleton["fields"] == list(FIELDS) and skeleton["cost_usd"] == summary["cost_usd"]
    rows = {skeleton["names"][row[2]]: dict(zip(FIELDS, row, strict=False)) for row in skeleton["spans"]}
    assert len(rows["answer"]) < FIELDS.index("input_tokens") + 1  # no LLM call: no tokens or cost
    assert (rows["chat gpt-4o"]["input_tokens"], rows["chat gpt-4o"]["output_tokens"]) == (1200, 300)
    assert {name: rows[name]["cost_usd"] for name in expected} == expected


def test_prompt_cache_writes_cost_more_than_input_in_either_convention(base: str) -> None:
    """Anthropic charges 1.25 times the input price for tokens written to its prompt cache: the OpenTelemetry
    (``gen_ai.usage.cache_creation.input_tokens``) and OpenInference (``..prompt_details.cache_write``) counts
    are priced as such, not as plain input."""
    starts = send(base, "cache-writes", [("semconv", CLAUDE_CACHE_WRITE), ("openinference", OPENINFERENCE_CACHE_WRITE)])
    usages = {
        "semconv": Usage(input_tokens=3000, output_tokens=100, cache_read_tokens=500, cache_write_tokens=2000),
        "openinference": Usage(input_tokens=3000, output_tokens=100, cache_write_tokens=2000),
    }
    expected = {
        name: genai_price(usage, "claude-sonnet-4-5", "anthropic", starts[name]) for name, usage in usages.items()
    }
    plain_input = genai_price(
        Usage(input_tokens=3000, output_tokens=100), "claude-sonnet-4-5", "anthropic", starts["openinference"]
    )
    assert expected["openinference"] > plain_input
    summary = listed(base, "cache-writes")
    trace = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()
    by_name = {span["name"]: span["genai"] for span in trace["spans"]}
    assert {name: by_name[name]["cost_usd"] for name in expected} == expected
    assert by_name["openinference"]["cache_write_tokens"] == 2000
    assert summary["cost_usd"] == pytest.approx(sum(expected.values()), rel=1e-12)


def test_an_unknown_model_has_no_cost_and_a_trace_of_only_such_calls_none(base: str) -> None:
    send(base, "unpriced", [("chat", UNKNOWN)])
    summary = listed(base, "unpriced")
    assert summary["cost_usd"] is None and summary["input_tokens"] == 10
    trace = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}").json()
    [call] = [span["genai"] for span in trace["spans"] if span["genai"]]
    assert call["counted"] is True and call["cost_usd"] is None
    send(base, "mixed", [("chat", UNKNOWN), ("ChatCompletion", OPENINFERENCE_MINI)])
    mixed = httpx.get(f"{base}/api/otel/traces/{listed(base, 'mixed')['trace_id']}").json()
    costs = {span["name"]: span["genai"]["cost_usd"] for span in mixed["spans"] if span["genai"]}
    assert costs["chat"] is None and costs["ChatCompletion"] > 0
    assert mixed["cost_usd"] == costs["ChatCompletion"]  # the known part: the unknown call adds nothing


def test_a_call_traced_at_two_levels_costs_once(base: str) -> None:
    """The gateway's SERVER span around its attempt, both with usage: the trace costs the attempt once, and the
    skeleton marks the outer span as not carrying the call."""
    provider = TracerProvider(resource=Resource.create({"service.name": "nested"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    tracer = provider.get_tracer("app")
    with (
        tracer.start_as_current_span("chat my-endpoint", attributes=GPT_4O),
        tracer.start_as_current_span("chat gpt-4o", attributes=GPT_4O) as attempt,
    ):
        start = attempt.start_time  # type: ignore[attr-defined]
    provider.shutdown()
    once = genai_price(
        Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200), "gpt-4o-2024-08-06", "openai", start
    )
    summary = listed(base, "nested")
    assert summary["cost_usd"] == once and summary["llm_calls"] == 1
    skeleton = httpx.get(f"{base}/api/otel/traces/{summary['trace_id']}/skeleton").json()
    rows = {skeleton["names"][row[2]]: dict(zip(FIELDS, row, strict=False)) for row in skeleton["spans"]}
    assert rows["chat my-endpoint"]["flags"] == FLAG_MODEL_CALL | FLAG_NOT_COUNTED
    assert rows["chat gpt-4o"]["flags"] == FLAG_MODEL_CALL


def test_a_cost_the_span_reports_is_kept(base: str) -> None:
    """OpenInference's ``llm.cost.total`` (the instrumentation knew the price) is the call's cost."""
    send(base, "reported", [("ChatCompletion", {**OPENINFERENCE_MINI, "llm.cost.total": 0.125})])
    assert listed(base, "reported")["cost_usd"] == 0.125
