"""Every gateway call is a trace in the otel store (through the plughost_span_exporter hook),
nested under the caller's."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import types
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from core import hookimpl
from core.testing import serve_in_thread
from plugins.gateway import tracing
from plugins.gateway.tests.kit import KEK, configure
from plugins.gateway.tracing import Tracer

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def wait_for(read: Any, timeout: float = 60.0) -> Any:
    """Poll ``read()`` until it returns something truthy (traces are stored in the background: a call's
    first export prices it, and on a loaded machine that took more than 10 s once)."""
    deadline = time.monotonic() + timeout
    while not (found := read()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def trace(base: str, trace_id: str, spans: int) -> dict[str, Any]:
    def read() -> Any:
        response = httpx.get(f"{base}/api/otel/traces/{trace_id}")
        return response.status_code == 200 and len(response.json()["spans"]) == spans and response.json()

    return wait_for(read)


def traceparent(span: str = CALLER_SPAN) -> dict[str, str]:
    return {"traceparent": f"00-{CALLER_TRACE}-{span}-01"}


def test_a_call_with_fallback_is_a_trace_under_the_callers_span(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "otel")) as base:
        # the primary is tried first in 1000 of 1001 calls (the weight picks the first attempt)
        configure(
            base,
            provider[0],
            "resilient",
            [("primary", "openai", "fail-500", 1000), ("backup", "anthropic", "echo-backup", 1)],
        )
        client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0, default_headers=traceparent())
        client.chat.completions.create(model="resilient", messages=[{"role": "user", "content": "one two"}])
        spans = {span["name"]: span for span in trace(base, CALLER_TRACE, 3)["spans"]}
    root, failed, served = spans["chat resilient"], spans["chat fail-500"], spans["chat echo-backup"]
    assert root["parent_span_id"] == CALLER_SPAN and root["kind"] == "SPAN_KIND_SERVER"
    assert {failed["parent_span_id"], served["parent_span_id"]} == {root["span_id"]}
    assert failed["status"]["code"] == "STATUS_CODE_ERROR" and failed["attributes"]["error.type"] == "500"
    assert served["kind"] == "SPAN_KIND_CLIENT" and served["status"]["code"] == "STATUS_CODE_OK"
    assert served["attributes"] | root["attributes"] == served["attributes"] | {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "resilient",
        "gen_ai.response.model": "echo-backup",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.response.finish_reasons": ["stop"],  # as the OpenAI client received it
        "plughost.gateway.endpoint": "resilient",
    }
    assert served["attributes"]["gen_ai.request.model"] == "echo-backup"
    assert served["attributes"]["gen_ai.response.finish_reasons"] == ["end_turn"]  # as the provider answered
    assert "gen_ai.input.messages" not in root["attributes"]  # content only when opted in


def test_a_streamed_call_is_traced_when_it_ends_with_content_when_opted_in(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "otel"), trace_content=True) as base:
        configure(base, provider[0], "via-openai", [("gpt", "openai", "echo-gpt", 1)])
        client = anthropic.Anthropic(
            base_url=f"{base}/gateway/anthropic", api_key="x", max_retries=0, default_headers=traceparent()
        )
        with client.messages.stream(
            model="via-openai", max_tokens=9, messages=[{"role": "user", "content": "a b"}]
        ) as stream:
            "".join(stream.text_stream)
        spans = {span["name"]: span for span in trace(base, CALLER_TRACE, 2)["spans"]}
    root = spans["chat via-openai"]["attributes"]
    assert (
        root["gen_ai.usage.input_tokens"],
        root["gen_ai.usage.output_tokens"],
        root["gen_ai.response.finish_reasons"],
    ) == (5, 3, ["end_turn"])  # the Anthropic client got end_turn; the provider said stop
    assert spans["chat echo-gpt"]["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert '"a b"' in root["gen_ai.input.messages"] and "echo-gpt: a b" in root["gen_ai.output.messages"]


def test_a_failed_call_is_traced_as_an_error(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "otel")) as base:
        configure(base, provider[0], "broken", [("broken", "openai", "fail-500", 1)])
        response = httpx.post(
            f"{base}/gateway/broken/invocations",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers=traceparent(),
        )
        assert response.status_code == 502
        spans = {span["name"]: span for span in trace(base, CALLER_TRACE, 2)["spans"]}
    assert (
        spans["chat broken"]["status"]["code"] == "STATUS_CODE_ERROR"
        and spans["chat broken"]["attributes"]["error.type"] == "502"
    )


def stuck_store(behaviour: str, released: threading.Event) -> types.SimpleNamespace:
    """A plugin whose trace store hangs (until ``released``) or fails: the calls must not notice."""

    async def export(request: Any, *, workspace: str, project: str = "default") -> None:
        if behaviour == "down":
            raise ConnectionError("the trace store is down")
        await asyncio.to_thread(released.wait, 600)

    return types.SimpleNamespace(PLUGHOST_NAME="stuckstore", plughost_span_exporter=hookimpl(lambda host: export))


@pytest.mark.parametrize("behaviour", ["slow", "down"])
def test_a_slow_or_down_store_never_fails_or_delays_a_call(
    make_app: Any,
    register_plugin: Any,
    provider: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    behaviour: str,
) -> None:
    """A call that waited for its trace's export would wait out the export timeout, here an hour:
    each call's own timeout (60 s) would fail it first."""
    monkeypatch.setattr(tracing, "EXPORT_TIMEOUT_SECONDS", 3600.0)
    released = threading.Event()
    register_plugin(stuck_store(behaviour, released))
    app = make_app(["gateway"], {"gateway": {"allow_private": True, "kek": KEK, "trace_queue_size": 3}})
    with caplog.at_level(logging.WARNING), serve_in_thread(app) as base:
        configure(base, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0, timeout=60)
        for _ in range(20):
            assert (
                client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
                .choices[0]
                .message.content
            )
        state = wait_for(
            lambda: (
                (s := httpx.get(f"{base}/api/gateway/tracing").json())["dropped"] >= (20 if behaviour == "down" else 10)
                and s
            )
        )
        released.set()  # the server's shutdown waits for the export in flight
    assert state["enabled"] and state["exported"] == 0
    assert "call traces dropped so far" in caplog.text


def test_a_request_that_cannot_be_translated_is_traced_as_a_400(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "otel")) as base:
        configure(base, provider[0], "claude", [("claude", "anthropic", "echo-claude", 1)])
        body = {"model": "claude", "messages": [{"role": "user", "content": "x"}], "seed": 1}
        assert httpx.post(f"{base}/gateway/v1/chat/completions", json=body, headers=traceparent()).status_code == 400
        spans = {span["name"]: span for span in trace(base, CALLER_TRACE, 2)["spans"]}
    for name in ("chat claude", "chat echo-claude"):
        assert spans[name]["status"]["code"] == "STATUS_CODE_ERROR" and spans[name]["attributes"]["error.type"] == "400"
    assert spans["chat echo-claude"]["status"]["message"].startswith("seed:")


def test_an_invalid_traceparent_starts_a_trace_of_its_own() -> None:
    async def export(*args: Any, **kwargs: Any) -> None:
        pass

    tracer = Tracer(export, queue_size=1, capture_content=False, project="default")
    for header in (
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        f"00-{CALLER_TRACE}-0000000000000000-01",
        "garbage",
        None,
    ):
        invocation = tracer.start("e", {}, header)
        assert invocation is not None and invocation.parent_id == b"" and invocation.trace_id.hex() != CALLER_TRACE
    valid = tracer.start("e", {}, f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    assert valid is not None and (valid.trace_id.hex(), valid.parent_id.hex()) == (CALLER_TRACE, CALLER_SPAN)


def test_stopping_exports_every_queued_call_and_never_cuts_an_export_short() -> None:
    exported: list[int] = []

    async def main() -> Tracer:
        in_flight = asyncio.Event()

        async def slow_export(request: Any, *, workspace: str, project: str) -> None:
            in_flight.set()
            await asyncio.sleep(0.3)
            exported.append(len(request.resource_spans[0].scope_spans[0].spans))

        tracer = Tracer(slow_export, queue_size=100, capture_content=False, project="default")
        exporting = asyncio.create_task(tracer.export_forever())

        def call() -> None:
            invocation = tracer.start("e", {}, None)
            assert invocation is not None
            invocation.root.finish(None)
            tracer.record(invocation)

        for _ in range(3):
            call()
        await in_flight.wait()  # the first batch is being written
        for _ in range(2):
            call()
        tracer.stop_exporting()
        await asyncio.wait_for(exporting, 5)
        return tracer

    tracer = asyncio.run(main())
    assert exported == [3, 2] and (tracer.exported, tracer.dropped) == (5, 0)


def test_a_client_that_traces_itself_through_the_gateway_counts_each_call_once(serve: Any, provider: Any) -> None:
    """The anthropic SDK traces its own calls (a CLIENT span with usage) and sends their ``traceparent``; the
    gateway's SERVER span and its attempt nest under it: three spans with usage per call, each call counted once."""
    with serve(plugins=("gateway", "otel")) as base:
        configure(base, provider[0], "claude", [("claude", "anthropic", "echo-claude", 1)])
        tracer_provider = TracerProvider(resource=Resource.create({"service.name": "traced-app"}))
        tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        client = anthropic.Anthropic(
            base_url=f"{base}/gateway/anthropic",
            api_key="x",
            max_retries=0,
            open_telemetry={"tracer_provider": tracer_provider},
        )
        with tracer_provider.get_tracer("app").start_as_current_span("two questions") as app_span:
            for question in ("one", "two"):
                client.messages.create(model="claude", max_tokens=9, messages=[{"role": "user", "content": question}])
        tracer_provider.shutdown()
        trace_id = format(app_span.get_span_context().trace_id, "032x")
        trace(base, trace_id, 7)  # the app's span; per call the SDK's, the gateway's and its attempt
        # read again once all are stored: a streamed trace is read in steps (call flags, then pages of spans),
        # so a read that overlapped the last write can show its spans without their flags
        found = trace(base, trace_id, 7)
        listed = httpx.get(f"{base}/api/otel/traces", params={"model": "echo-claude"}).json()["traces"]
    assert [summary["trace_id"] for summary in listed] == [trace_id]
    assert (listed[0]["llm_calls"], listed[0]["input_tokens"], listed[0]["output_tokens"]) == (2, 10, 4)
    counted = [span for span in found["spans"] if span["genai"] and span["genai"]["counted"]]
    assert [span["name"] for span in counted] == ["chat echo-claude"] * 2
    sdk = [span for span in found["spans"] if span["service_name"] == "traced-app" and span["genai"]]
    assert len(sdk) == 2 and all(span["genai"]["input_tokens"] == 5 for span in sdk)  # the SDK's spans have usage


def test_the_server_span_records_the_finish_reason_the_client_received(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "otel")) as base:
        configure(base, provider[0], "agent", [("claude", "anthropic", "tool-claude", 1)])
        client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0, default_headers=traceparent())
        tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
        answer = client.chat.completions.create(
            model="agent", messages=[{"role": "user", "content": "Paris"}], tools=tools
        )
        assert answer.choices[0].finish_reason == "tool_calls"
        spans = {span["name"]: span for span in trace(base, CALLER_TRACE, 2)["spans"]}
    assert spans["chat agent"]["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]  # what the client got
    assert spans["chat tool-claude"]["attributes"]["gen_ai.response.finish_reasons"] == ["tool_use"]  # the provider's
