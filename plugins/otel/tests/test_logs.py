"""OTLP logs: ``POST /v1/logs`` and gRPC ``LogsService/Export``, sent by the OpenTelemetry SDK's own log exporters;
records stored on both stores, tied to their span, shown with their trace, covered by retention."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from core.testing import free_port, postgresql_down, serve_in_thread

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def served(make_app: Any, database_url: str) -> Iterator[tuple[str, str]]:
    """(HTTP base URL, gRPC target) of a server on ``database_url``."""
    target = f"127.0.0.1:{free_port()}"
    app = make_app(["otel"], {"database_url": database_url, "otel": {"grpc_address": target}})
    with serve_in_thread(app) as url:
        yield url, target


def a_call_with_its_logs(base: str, log_exporter: Any) -> str:
    """An app span with a GenAI prompt and answer as log records, and a plain log line; returns the trace id."""
    resource = Resource.create({"service.name": "logging-app"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger = logger_provider.get_logger("app")
    with tracer_provider.get_tracer("app").start_as_current_span(
        "chat m", attributes={"gen_ai.operation.name": "chat"}
    ) as span:
        logger.emit(event_name="gen_ai.user.message", body={"content": "Is it <b>raining</b>?"})
        logger.emit(
            event_name="gen_ai.choice",
            body={"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "No."}},
        )
        logger.emit(body="cache miss for user 7", severity_number=SeverityNumber.WARN, severity_text="WARN")
    logger.emit(body="outside any trace")
    tracer_provider.shutdown()
    logger_provider.shutdown()
    return format(span.get_span_context().trace_id, "032x")


def read_trace(base: str, trace_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(f"{base}/api/otel/traces/{trace_id}")
        if response.status_code == 200 and len(response.json()["logs"]) == 3:
            return response.json()
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_sdks_log_exporters_records_are_stored_with_their_span(served: tuple[str, str], transport: str) -> None:
    base, target = served
    exporter = (
        HttpLogExporter(endpoint=f"{base}/v1/logs")
        if transport == "http"
        else GrpcLogExporter(endpoint=target, insecure=True)
    )
    trace_id = a_call_with_its_logs(base, exporter)
    found = read_trace(base, trace_id)
    [span] = found["spans"]
    assert [record["event_name"] for record in found["logs"]] == ["gen_ai.user.message", "gen_ai.choice", None]
    assert {record["span_id"] for record in found["logs"]} == {span["span_id"]}
    # GenAI events are the call's messages; the other records are the span's logs
    assert span["genai"]["input_messages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "Is it <b>raining</b>?"}]}
    ]
    assert span["genai"]["output_messages"] == [
        {"role": "assistant", "parts": [{"type": "text", "content": "No."}], "finish_reason": "stop"}
    ]
    assert [(record["body"], record["severity_text"]) for record in span["logs"]] == [("cache miss for user 7", "WARN")]


def test_logs_over_http_json_gzip_with_partial_success_and_dedup(served: tuple[str, str]) -> None:
    base, _ = served
    record = {
        "timeUnixNano": "1700000000000000000",
        "body": {"stringValue": "hi"},
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
    }
    bad = {"timeUnixNano": "1", "traceId": "ab" * 16, "spanId": "cd" * 4}  # a span id of 4 bytes
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record, bad]}]}]}
    for _ in range(2):  # the same record twice is stored once
        response = httpx.post(
            f"{base}/v1/logs",
            content=gzip.compress(httpx.Request("POST", "/", json=body).content),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert response.status_code == 200, response.text
        partial = response.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] == "1" and "span_id" in partial["errorMessage"]
    protobuf = httpx.post(f"{base}/v1/logs", content=b"\xff\xff", headers=PROTOBUF)
    assert protobuf.status_code == 400 and protobuf.headers["content-type"] == "application/x-protobuf"
    answer = httpx.post(f"{base}/v1/logs", content=ExportLogsServiceRequest().SerializeToString(), headers=PROTOBUF)
    assert (
        answer.status_code == 200
        and ExportLogsServiceResponse.FromString(answer.content) == ExportLogsServiceResponse()
    )


def test_a_store_that_is_down_gets_503_and_the_exporter_retries(make_app: Any, postgresql_url: str) -> None:
    with serve_in_thread(make_app(["otel"], {"database_url": postgresql_url, "otel": {"grpc_address": ""}})) as base:
        body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}
        with postgresql_down(postgresql_url):
            response = httpx.post(f"{base}/v1/logs", json=body)
        assert response.status_code == 503 and response.headers["retry-after"]
        assert httpx.post(f"{base}/v1/logs", json=body).status_code == 200


def test_deleting_a_trace_deletes_its_logs(served: tuple[str, str]) -> None:
    base, _ = served
    trace_id = a_call_with_its_logs(base, HttpLogExporter(endpoint=f"{base}/v1/logs"))
    read_trace(base, trace_id)
    assert httpx.delete(f"{base}/api/otel/traces/{trace_id}").status_code == 204
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "01" * 8,
                                "name": "again",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    assert httpx.post(f"{base}/v1/traces", json=body).status_code == 200
    assert httpx.get(f"{base}/api/otel/traces/{trace_id}").json()["logs"] == []
