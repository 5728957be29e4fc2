"""One chat call made by the openai SDK under a real instrumentation, exported to plughost over OTLP/HTTP.

Run in a process of its own (instrumentations patch the SDK for the whole process):

    python -m plugins.otel.tests.instrumented <instrumentation> <plughost base URL> <OpenAI base URL> [gateway|direct]

The instrumentations are the ones LLM apps ship: ``openai-v2``
(opentelemetry-instrumentation-openai-v2), ``openinference`` (openinference-instrumentation-openai),
``openllmetry`` (opentelemetry-instrumentation-openai), ``mlflow`` (mlflow-tracing) and
``logfire``. ``openai-v2`` captures content (as OTLP log records, through ``/v1/logs``).
"""

from __future__ import annotations

import os
import sys

QUESTION = "What is the capital of France?"
MODEL = "gpt-4o-mini"


def main(instrumentation: str, plughost: str, openai_base: str) -> None:
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
    if instrumentation == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        V2().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    elif instrumentation == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

        OpenInference().instrument(tracer_provider=tracer_provider)
    elif instrumentation == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

        OpenLLMetry().instrument(tracer_provider=tracer_provider)
    else:
        raise SystemExit(f"unknown instrumentation {instrumentation!r}")
    ask(openai_base)
    tracer_provider.force_flush()
    logger_provider.force_flush()


def ask(openai_base: str) -> None:
    """One chat call, as an application makes it."""
    import openai

    client = openai.OpenAI(base_url=openai_base, api_key="test-key", max_retries=0)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])


if __name__ == "__main__":
    main(*sys.argv[1:4])
