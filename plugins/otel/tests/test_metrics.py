"""OTLP metrics: the SDK's metric exporters (HTTP and gRPC) and logfire's export are accepted; the GenAI client
metrics are kept as series, every other metric acknowledged in ``partial_success`` as not stored."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

from core.testing import free_port, serve_in_thread

TOKEN_USAGE = "gen_ai.client.token.usage"


@pytest.fixture
def served(make_app: Any, database_url: str) -> Iterator[tuple[str, str]]:
    target = f"127.0.0.1:{free_port()}"
    app = make_app(["otel"], {"database_url": database_url, "otel": {"grpc_address": target}})
    with serve_in_thread(app) as url:
        yield url, target


def recorded() -> Any:
    """What an instrumented app's SDK has to export: the GenAI token histogram and a counter plughost does not keep."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": "metered-app"}), metric_readers=[reader])
    meter = provider.get_meter("app")
    usage = meter.create_histogram(TOKEN_USAGE, unit="{token}")
    usage.record(120, {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o-mini"})
    usage.record(30, {"gen_ai.token.type": "output", "gen_ai.request.model": "gpt-4o-mini"})
    meter.create_counter("http.requests").add(3)
    return reader.get_metrics_data()


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_sdks_metric_exporters_succeed_and_the_genai_histogram_is_kept(
    served: tuple[str, str], transport: str
) -> None:
    base, target = served
    exporter = (
        HttpMetricExporter(endpoint=f"{base}/v1/metrics")
        if transport == "http"
        else GrpcMetricExporter(endpoint=target, insecure=True)
    )
    assert exporter.export(recorded()) == MetricExportResult.SUCCESS
    series = httpx.get(f"{base}/api/otel/metrics/{TOKEN_USAGE}").json()
    assert sorted((p["attributes"]["gen_ai.token.type"], p["sum"], p["count"]) for p in series["points"]) == [
        ("input", 120.0, 1),
        ("output", 30.0, 1),
    ]
    assert {p["service_name"] for p in series["points"]} == {"metered-app"}
    assert httpx.get(f"{base}/api/otel/metrics/http.requests").status_code == 404


def test_other_metrics_are_acknowledged_as_not_stored(served: tuple[str, str]) -> None:
    base, _ = served
    body: ExportMetricsServiceRequest = encode_metrics(recorded())
    response = httpx.post(
        f"{base}/v1/metrics", content=body.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_data_points == 1
    assert "does not store" in partial.error_message and "http.requests" in partial.error_message


LOGFIRE_APP = textwrap.dedent(
    """
    import logging, os, sys
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sys.argv[1]
    import logfire
    logging.basicConfig(level=logging.WARNING)
    logfire.configure(send_to_logfire=False, console=False, service_name="logfire-app")
    logfire.metric_counter("jobs.done").add(1)
    logfire.metric_histogram("gen_ai.client.operation.duration", unit="s").record(0.25, {"gen_ai.request.model": "m"})
    logfire.force_flush()
    logfire.shutdown()
    """
)


def test_logfires_metrics_export_gets_no_error(served: tuple[str, str]) -> None:
    base, _ = served
    ran = subprocess.run([sys.executable, "-c", LOGFIRE_APP, base], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "Failed to export" not in ran.stderr and "404" not in ran.stderr, ran.stderr
    points = httpx.get(f"{base}/api/otel/metrics/gen_ai.client.operation.duration").json()["points"]
    assert points and points[-1]["sum"] == 0.25 and points[-1]["service_name"] == "logfire-app"
