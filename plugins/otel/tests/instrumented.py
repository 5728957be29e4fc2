"""One chat call made by the openai SDK under a real instrumentation, exported to plughost over OTLP/HTTP.

Run in a process of its own (instrumentations patch the SDK for the whole process):

    python -m plugins.otel.tests.instrumented <instrumentation> <plughost base URL> <OpenAI base URL> [session id]

The instrumentations are the ones LLM apps ship: ``openai-v2``
(opentelemetry-instrumentation-openai-v2), ``openinference`` (openinference-instrumentation-openai),
``openllmetry`` (opentelemetry-instrumentation-openai), ``mlflow`` (mlflow-tracing) and
``logfire``. ``openai-v2`` captures content (as OTLP log records, through ``/v1/logs``).

With a session id, the app holds a conversation of :data:`CONVERSATION` instead, one trace a turn, each
naming the session as its convention does: ``openinference`` with OpenInference's ``using_session``
(``session.id`` on every span), ``openai-v2`` under a GenAI agent invocation (``invoke_agent`` with
``gen_ai.conversation.id``, from opentelemetry-util-genai) around the instrumented call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

QUESTION = "What is the capital of France?"
MODEL = "gpt-4o-mini"
CONVERSATION = (QUESTION, "And what is the capital of Italy?")
"""A conversation's user messages, one a turn."""


def main(instrumentation: str, plughost: str, openai_base: str, session: str | None = None) -> None:
    os.environ["OTEL_SERVICE_NAME"] = f"app-{instrumentation}"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    if instrumentation == "mlflow":
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"{plughost}/v1/traces"
        os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        import mlflow

        mlflow.openai.autolog()
        ask(openai_base)
        mlflow.flush_trace_async_logging()
        return
    if instrumentation == "logfire":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = plughost
        import logfire

        logfire.configure(send_to_logfire=False, console=False, service_name="app-logfire")
        logfire.instrument_openai()
        ask(openai_base)
        logfire.force_flush()
        return

    from opentelemetry import trace
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": f"app-{instrumentation}"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{plughost}/v1/traces")))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{plughost}/v1/logs")))
    set_logger_provider(logger_provider)
    turn: Callable[[str, Callable[[], None]], None] = _plain_turn
    if instrumentation == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2
        from opentelemetry.util.genai.handler import get_telemetry_handler

        V2().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
        handler = get_telemetry_handler(tracer_provider=tracer_provider, logger_provider=logger_provider)

        def in_agent(session: str, call: Callable[[], None]) -> None:
            with handler.invoke_local_agent("openai", request_model=MODEL) as agent:
                agent.agent_name, agent.conversation_id = "geography", session
                call()

        turn = in_agent

    elif instrumentation == "openinference":
        from openinference.instrumentation import using_session
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

        OpenInference().instrument(tracer_provider=tracer_provider)

        def in_session(session: str, call: Callable[[], None]) -> None:
            with using_session(session):
                call()

        turn = in_session

    elif instrumentation == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

        OpenLLMetry().instrument(tracer_provider=tracer_provider)
    else:
        raise SystemExit(f"unknown instrumentation {instrumentation!r}")
    if session is None:
        ask(openai_base)
    else:
        history: list[dict[str, str]] = []
        for question in CONVERSATION:
            history.append({"role": "user", "content": question})
            turn(session, lambda: history.append({"role": "assistant", "content": ask(openai_base, history)}))
    tracer_provider.force_flush()
    logger_provider.force_flush()


def _plain_turn(session: str, call: Callable[[], None]) -> None:
    call()


def ask(openai_base: str, messages: list[dict[str, str]] | None = None) -> str:
    """One chat call, as an application makes it; returns the answer."""
    import openai

    client = openai.OpenAI(base_url=openai_base, api_key="test-key", max_retries=0)
    asked: Any = messages or [{"role": "user", "content": QUESTION}]
    answer = client.chat.completions.create(model=MODEL, messages=asked)
    return answer.choices[0].message.content or ""


if __name__ == "__main__":
    main(*sys.argv[1:5])
