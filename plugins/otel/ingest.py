"""What the OTLP/HTTP and OTLP/gRPC receivers share around storing one decoded request."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from core import empty_off_loop, gc_paused
from core.unavailable import unavailable

from .decode import Decoded
from .store import Stored

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
        await empty_off_loop(decoded.rows)


def export_answer(decoded: Decoded, stored: Stored) -> ExportTraceServiceResponse:
    """The ExportTraceServiceResponse: spans refused by the decoder or the store in ``partial_success``."""
    answer = ExportTraceServiceResponse()
    if decoded.rejected or stored.rejected:
        answer.partial_success.rejected_spans = decoded.rejected + stored.rejected
        answer.partial_success.error_message = "; ".join((decoded.reasons + stored.reasons)[:5])
    return answer


def store_failure(error: BaseException) -> str:
    """What to tell an exporter whose spans could not be stored (it retries): the outage's cause when
    the database is unavailable, else the kind of error (never its text, which may hold span data)."""
    cause = unavailable(error)
    return cause.message if cause is not None else f"the trace store failed ({type(error).__name__}); retry later"
