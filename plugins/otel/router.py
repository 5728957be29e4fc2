"""OTLP/HTTP ingest (``POST /v1/traces``) and the trace query API (``/api/otel/traces``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlalchemy.exc import SQLAlchemyError

from core.context import current_workspace

from .decode import JSON, PROTOBUF, PayloadError, decode_request
from .present import span_tree, span_view, trace_summary
from .settings import Settings
from .store import SpanStore, TraceFilter

logger = logging.getLogger("plughost.otel")

RETRY_AFTER_SECONDS = "5"
TraceId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex digits")]
GRPC_CODES = {400: code_pb2.INVALID_ARGUMENT, 413: code_pb2.RESOURCE_EXHAUSTED, 415: code_pb2.INVALID_ARGUMENT, 503: code_pb2.UNAVAILABLE}


def create_router(store: SpanStore, settings: Settings) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/traces",
        tags=["otel"],
        summary="OTLP/HTTP trace export",
        description="Accepts `application/x-protobuf` or `application/json` ExportTraceServiceRequest, "
        "optionally gzip or deflate encoded; answers an ExportTraceServiceResponse in the same encoding. "
        "Errors are a google.rpc.Status in the same encoding.",
    )
    async def ingest(request: Request) -> Response:
        kind = PROTOBUF if request.headers.get("content-type", "").startswith(PROTOBUF) else JSON
        try:
            body = await _read_capped(request, settings.max_body_bytes)
            kind, decoded = await anyio.to_thread.run_sync(
                lambda: decode_request(
                    body,
                    content_type=request.headers.get("content-type", ""),
                    encoding=request.headers.get("content-encoding", ""),
                    limit=settings.max_decompressed_bytes,
                    workspace=current_workspace(),
                    project=request.headers.get(settings.project_header) or "default",
                )
            )
        except PayloadError as error:
            return _status(kind, error.status, str(error))
        try:
            stored = await store.add(decoded.rows)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("could not store %d spans, asking the exporter to retry: %s", len(decoded.rows), error)
            return _status(kind, 503, "the trace store is busy or down; retry later", {"retry-after": RETRY_AFTER_SECONDS})
        answer = ExportTraceServiceResponse()
        if decoded.rejected or stored.rejected:
            answer.partial_success.rejected_spans = decoded.rejected + stored.rejected
            answer.partial_success.error_message = "; ".join((decoded.reasons + stored.reasons)[:5])
        return _encoded(kind, answer, 200)

    @router.get("/api/otel/traces", tags=["otel"], summary="List traces, newest first")
    async def list_traces(
        service: str | None = None,
        project: str | None = None,
        status: Literal["ok", "error"] | None = None,
        start_after: Annotated[datetime | None, Query(description="ISO 8601; traces that started at or after")] = None,
        start_before: Annotated[datetime | None, Query(description="ISO 8601; traces that started before")] = None,
        min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        where = TraceFilter(
            service=service,
            project=project,
            status=status,
            start_after_ns=_ns(start_after),
            start_before_ns=_ns(start_before),
            min_duration_ns=None if min_duration_ms is None else int(min_duration_ms * 1_000_000),
        )
        try:
            page, next_token = await store.list_traces(where, limit, page_token)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return {"traces": [trace_summary(row) for row in page], "next_page_token": next_token}

    @router.get("/api/otel/traces/{trace_id}", tags=["otel"], summary="One trace with its spans and span tree")
    async def get_trace(trace_id: TraceId) -> dict[str, Any]:
        found = await store.get_trace(trace_id)
        if found is None:
            raise HTTPException(404, f"no trace {trace_id} in workspace {current_workspace()!r}")
        summary, rows = found
        views = [span_view(row) for row in rows]
        return {**trace_summary(summary), "spans": views, "tree": span_tree(views)}

    @router.delete("/api/otel/traces/{trace_id}", tags=["otel"], summary="Delete a trace", status_code=204)
    async def delete_trace(trace_id: TraceId) -> Response:
        if not await store.delete_trace(trace_id):
            raise HTTPException(404, f"no trace {trace_id} in workspace {current_workspace()!r}")
        return Response(status_code=204)

    return router


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadError(413, f"body is {declared} bytes; the limit is {limit} (PLUGHOST_OTEL_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadError(413, f"body is over the limit of {limit} bytes (PLUGHOST_OTEL_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def _status(kind: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _encoded(kind, status_pb2.Status(code=GRPC_CODES.get(status, code_pb2.UNKNOWN), message=message), status, headers)


def _encoded(kind: str, message: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    if kind == JSON:
        return Response(json_format.MessageToJson(message, indent=None), status, headers, media_type=JSON)
    return Response(message.SerializeToString(), status, headers, media_type=PROTOBUF)


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)
