"""Real traces for the tests: the OpenTelemetry SDK exporting to a server's ``/v1/traces``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer

MS = 1_000_000


@contextlib.contextmanager
def exporting(
    base: str, service: str, workspace: str | None = None, headers: dict[str, str] | None = None
) -> Iterator[Tracer]:
    """A tracer whose ended spans go to ``base`` at once (as ``service``, into ``workspace``, with ``headers``);
    flushed on exit."""
    headers = {**(headers or {}), **({"X-Plughost-Workspace": workspace} if workspace else {})} or None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers)))
    try:
        yield provider.get_tracer(service)
    finally:
        provider.shutdown()


def trace_id_of(span: object) -> str:
    return format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]
