"""What the OTLP/HTTP and OTLP/gRPC receivers share around storing one decoded request."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy.exc import SQLAlchemyError

from core import empty, gc_paused, run_bulk
from core.unavailable import unavailable

from .decode import Decoded, to_rows
from .logs import LogStore, log_rows
from .metrics import MetricStore, metric_rows
from .store import SpanStore, Stored

logger = logging.getLogger("plughost.otel")

LARGE_REQUEST_BYTES = 256 * 1024
"""A request this big once inflated (tens of thousands of spans, or a thousand spans of many
attributes) is decoded and stored with the cyclic GC paused, and its rows are freed in a bulk
thread (see :mod:`core.bulk`). Inflated, not on the wire: 170 KiB of gzip can carry a million
attributes, whose terms alone are 1.5 million objects to free."""


def bulk_work(inflated_bytes: int) -> AbstractContextManager[object]:
    """Wrap decoding and storing a request of ``inflated_bytes``: the cyclic GC is paused for a large one."""
    return gc_paused() if inflated_bytes >= LARGE_REQUEST_BYTES else nullcontext()


async def release(inflated_bytes: int, decoded: Decoded) -> None:
    """Free a large request's rows off the event loop, before the GC pause of :func:`bulk_work` ends."""
    if inflated_bytes >= LARGE_REQUEST_BYTES:
        await run_bulk(empty_rows, decoded.rows)


def empty_rows(rows: list[dict[str, Any]]) -> None:
    """Empty ``rows``, and first the terms of a span of many attributes, a list (see ``SpanFacts.terms``),
    a term at a time: freeing 1.8 M terms at once held the GIL for a second."""
    for row in rows:
        terms = row.get("terms")
        if isinstance(terms, list):
            empty(terms)
    empty(rows)


def partial_answer(response_type: type[Message], rejected_field: str) -> Callable[[Decoded, Stored], Message]:
    """The answer of a signal's export: what the decoder or the store refused in ``partial_success``
    (``rejected_field``: ``rejected_spans``, ``rejected_log_records``, ``rejected_data_points``), saying why."""

    def answer(decoded: Decoded, stored: Stored) -> Message:
        made = response_type()
        if decoded.rejected or stored.rejected:
            partial = made.partial_success  # type: ignore[attr-defined]
            setattr(partial, rejected_field, decoded.rejected + stored.rejected)
            partial.error_message = "; ".join((decoded.reasons + stored.reasons)[:5])[:1000]
        return made

    return answer


@dataclass(frozen=True)
class Signal:
    """One OTLP signal as both receivers take it: how a request decodes, is stored and is answered."""

    name: str
    """``traces``, ``logs`` or ``metrics``: the HTTP path is ``/v1/<name>``."""
    grpc_service: str
    request_type: type[Message]
    rows: Callable[..., Decoded]
    add: Callable[[list[dict[str, Any]]], Awaitable[Stored]]
    answer: Callable[[Decoded, Stored], Message]
    items: str
    """What it carries, for messages: ``spans``, ``log records``, ``data points``."""

    async def store(self, decoded: Decoded, inflated_bytes: int, via: str) -> Stored | NotStored:
        """Store the decoded rows, then free them (see :func:`release`), stored or not: after a failure they
        were freed on the event loop (a 363 ms stall). A failure of the store is logged and returned, for the
        receiver to ask the exporter to retry (HTTP 503, gRPC ``UNAVAILABLE``); ``via`` names the receiver."""
        try:
            return await self.add(decoded.rows)
        except (SQLAlchemyError, OSError) as error:
            message = _store_failure(error)
            logger.warning(
                "could not store %d %s from %s, asking the exporter to retry: %s",
                len(decoded.rows),
                self.items,
                via,
                message,
            )
            return NotStored(message)
        finally:
            await release(inflated_bytes, decoded)


@dataclass(frozen=True)
class NotStored:
    """The store failed (down, busy, out of space): what to tell the exporter, which retries."""

    message: str


def signals(spans: SpanStore, logs: LogStore, metrics: MetricStore) -> tuple[Signal, ...]:
    """The signals the otel plugin receives, bound to their stores."""
    return (
        Signal(
            "traces",
            "opentelemetry.proto.collector.trace.v1.TraceService",
            ExportTraceServiceRequest,
            functools.partial(to_rows, pricing=spans.pricing),
            spans.add,
            partial_answer(ExportTraceServiceResponse, "rejected_spans"),
            "spans",
        ),
        Signal(
            "logs",
            "opentelemetry.proto.collector.logs.v1.LogsService",
            ExportLogsServiceRequest,
            log_rows,
            logs.add,
            partial_answer(ExportLogsServiceResponse, "rejected_log_records"),
            "log records",
        ),
        Signal(
            "metrics",
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            ExportMetricsServiceRequest,
            metric_rows,
            metrics.add,
            partial_answer(ExportMetricsServiceResponse, "rejected_data_points"),
            "data points",
        ),
    )


def _store_failure(error: BaseException) -> str:
    """What to tell an exporter whose spans could not be stored (it retries): the outage's cause when
    the database is unavailable, else the kind of error (never its text, which may hold span data)."""
    cause = unavailable(error)
    return cause.message if cause is not None else f"the trace store failed ({type(error).__name__}); retry later"
