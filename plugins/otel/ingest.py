"""What the OTLP/HTTP and OTLP/gRPC receivers share around storing one decoded request."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from core import empty_off_loop, gc_paused

from .decode import Decoded
from .store import Stored

LARGE_BODY_BYTES = 256 * 1024
"""A request this big on the wire (tens of thousands of spans) is decoded and stored with the cyclic
GC paused, and its rows are freed in a worker thread (see :mod:`core.bulk`)."""


def bulk_work(body: bytes) -> AbstractContextManager[object]:
    """Wrap decoding and storing ``body``: the cyclic GC is paused for a large one."""
    return gc_paused() if len(body) >= LARGE_BODY_BYTES else nullcontext()


async def release(body: bytes, decoded: Decoded) -> None:
    """Free a large request's rows off the event loop, before the GC pause of :func:`bulk_work` ends."""
    if len(body) >= LARGE_BODY_BYTES:
        await empty_off_loop(decoded.rows)


def export_answer(decoded: Decoded, stored: Stored) -> ExportTraceServiceResponse:
    """The ExportTraceServiceResponse: spans refused by the decoder or the store in ``partial_success``."""
    answer = ExportTraceServiceResponse()
    if decoded.rejected or stored.rejected:
        answer.partial_success.rejected_spans = decoded.rejected + stored.rejected
        answer.partial_success.error_message = "; ".join((decoded.reasons + stored.reasons)[:5])
    return answer
