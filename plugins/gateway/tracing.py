"""Every gateway call as an OpenTelemetry trace, stored through the ``plughost_span_exporter`` hook.

One SERVER span per invocation and one CLIENT span per provider attempt (so fallbacks
show), with the GenAI semantic conventions. A W3C ``traceparent`` from the client
makes the invocation a child of the caller's span. On the request path a call only
appends plain records to a bounded queue; a background task turns them into OTLP
protobuf and exports them in batches. A full queue or a failing or slow store drops
records (counted and logged), never a call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from core import Pricing, run_bulk
from core.context import current_workspace
from core.hookspecs import SpanExporter

from .costs import AttemptCost
from .providers import Outcome

logger = logging.getLogger("plughost.gateway")

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
BATCH = 200
LINGER_SECONDS = 0.2
EXPORT_TIMEOUT_SECONDS = 5.0
SERVICE_NAME = "plughost-gateway"


@dataclass
class SpanRecord:
    name: str
    kind: int
    start_ns: int
    span_id: bytes = field(default_factory=lambda: os.urandom(8))
    end_ns: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cost: AttemptCost | None = None
    """What the call it records cost depends on: priced when exported (``gen_ai.usage.cost``)."""

    def finish(
        self,
        outcome: Outcome | None,
        error: str | None = None,
        error_type: str | None = None,
        cost: AttemptCost | None = None,
    ) -> None:
        self.end_ns = time.time_ns()
        self.cost = cost
        if outcome is not None:
            _usage_attributes(self.attributes, outcome)
        if error is not None:
            self.error = error
            self.attributes["error.type"] = error_type or "error"


@dataclass
class Invocation:
    """One gateway call: its root span and one child per provider attempt."""

    workspace: str
    trace_id: bytes
    parent_id: bytes
    root: SpanRecord
    attempts: list[SpanRecord] = field(default_factory=list)

    def attempt(self, name: str, provider: str, model: str) -> SpanRecord:
        span = SpanRecord(
            f"chat {model}",
            Span.SPAN_KIND_CLIENT,
            time.time_ns(),
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "plughost.gateway.model": name,
            },
        )
        self.attempts.append(span)
        return span


class Tracer:
    """Queues finished invocations and exports them in the background."""

    def __init__(
        self,
        export: SpanExporter | None,
        *,
        queue_size: int,
        capture_content: bool,
        project: str,
        pricing: Pricing | None = None,
    ) -> None:
        self.export = export
        self.pricing = pricing or Pricing()
        self.capture_content = capture_content
        self.project = project
        self.queue_size = queue_size
        self.queue: asyncio.Queue[Invocation | None] = asyncio.Queue()  # bounded by record(): a stop always fits
        self.exported = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return self.export is not None

    def start(self, endpoint: str, body: dict[str, Any], traceparent: str | None) -> Invocation | None:
        if self.export is None:
            return None
        parent = TRACEPARENT.fullmatch(traceparent.strip().lower()) if traceparent else None
        if parent and (not int(parent[1], 16) or not int(parent[2], 16)):  # all-zero ids are invalid (W3C)
            parent = None
        trace_id, parent_id = (bytes.fromhex(parent[1]), bytes.fromhex(parent[2])) if parent else (os.urandom(16), b"")
        root = SpanRecord(
            f"chat {endpoint}",
            Span.SPAN_KIND_SERVER,
            time.time_ns(),
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": endpoint,
                "plughost.gateway.endpoint": endpoint,
            },
        )
        if self.capture_content:
            root.attributes["gen_ai.input.messages"] = json.dumps(body.get("messages"))
            if body.get("system") is not None:
                root.attributes["gen_ai.system_instructions"] = json.dumps(body["system"])
        return Invocation(current_workspace(), trace_id, parent_id, root)

    def record(self, invocation: Invocation) -> None:
        """Queue a finished invocation; never blocks, drops (counted, logged) when the queue is full."""
        if self.queue.qsize() >= self.queue_size:
            self._drop(1, "the trace queue is full")
        else:
            self.queue.put_nowait(invocation)

    def _drop(self, count: int, why: str) -> None:
        before, self.dropped = self.dropped, self.dropped + count
        if before == 0 or before // 1000 != self.dropped // 1000:  # the first drop, then every thousandth
            logger.warning("gateway tracing: %s; %d call traces dropped so far", why, self.dropped)

    async def export_forever(self) -> None:
        """Export queued invocations in batches until :meth:`stop_exporting`, then export what is left
        and return. Stopping never cuts an export short: a cancelled write to the trace store would
        lose its batch."""
        while (first := await self.queue.get()) is not None:
            await asyncio.sleep(LINGER_SECONDS)
            batch, going_on = self._take(first)
            await self._export(batch)
            if not going_on:
                return

    def stop_exporting(self) -> None:
        """Make :meth:`export_forever` export what is queued now and return."""
        self.queue.put_nowait(None)

    def _take(self, first: Invocation) -> tuple[list[Invocation], bool]:
        """``first`` and up to ``BATCH`` in all of what is queued; whether exporting goes on (no stop was taken)."""
        batch = [first]
        while len(batch) < BATCH and not self.queue.empty():
            invocation = self.queue.get_nowait()
            if invocation is None:
                return batch, False
            batch.append(invocation)
        return batch, True

    async def _export(self, batch: list[Invocation]) -> None:
        assert self.export is not None
        by_workspace: dict[str, list[Invocation]] = defaultdict(list)
        for invocation in batch:
            by_workspace[invocation.workspace].append(invocation)
        for workspace, invocations in by_workspace.items():
            try:
                request = await run_bulk(otlp_request, invocations, self.pricing)  # pricing is CPU work
                await asyncio.wait_for(
                    self.export(request, workspace=workspace, project=self.project), EXPORT_TIMEOUT_SECONDS
                )
            except Exception as error:  # a store that is down or slow costs traces, never calls
                self._drop(len(invocations), f"the trace store failed ({type(error).__name__}: {error})")
            else:
                self.exported += len(invocations)


def otlp_request(invocations: list[Invocation], pricing: Pricing) -> ExportTraceServiceRequest:
    """The invocations as one OTLP request (filled in place: protobuf's cheapest way), each span that
    records a call with what it cost (``gen_ai.usage.cost``, in US dollars) when it has a price."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = SERVICE_NAME
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "plughost.gateway"
    for invocation in invocations:
        _fill(scope_spans.spans.add(), invocation.trace_id, invocation.parent_id, invocation.root, pricing)
        for attempt in invocation.attempts:
            _fill(scope_spans.spans.add(), invocation.trace_id, invocation.root.span_id, attempt, pricing)
    return request


def _fill(span: Span, trace_id: bytes, parent_id: bytes, record: SpanRecord, pricing: Pricing) -> None:
    span.trace_id, span.span_id, span.parent_span_id = trace_id, record.span_id, parent_id
    span.name, span.kind = record.name, record.kind  # type: ignore[assignment]
    span.start_time_unix_nano, span.end_time_unix_nano = record.start_ns, max(record.end_ns, record.start_ns)
    if record.error:
        span.status.code, span.status.message = Status.STATUS_CODE_ERROR, record.error
    else:
        span.status.code = Status.STATUS_CODE_OK
    for key, value in record.attributes.items():
        if value is not None:
            _set(span.attributes.add(key=key).value, value)
    cost = None if record.cost is None else record.cost.cost(pricing)
    if cost is not None:
        span.attributes.add(key="gen_ai.usage.cost").value.double_value = cost


def _set(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        for item in value:
            _set(target.array_value.values.add(), item)
    else:
        target.string_value = str(value)


def _usage_attributes(attributes: dict[str, Any], outcome: Outcome) -> None:
    attributes["gen_ai.response.model"] = outcome.model
    attributes["gen_ai.usage.input_tokens"] = outcome.input_tokens
    attributes["gen_ai.usage.output_tokens"] = outcome.output_tokens
    attributes["gen_ai.usage.cache_read.input_tokens"] = outcome.cached_tokens
    attributes["gen_ai.usage.cache_creation.input_tokens"] = outcome.cache_write_tokens
    attributes["gen_ai.usage.reasoning.output_tokens"] = outcome.reasoning_tokens
    if outcome.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = list(outcome.finish_reasons)
    if outcome.text is not None:
        attributes["gen_ai.output.messages"] = json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "".join(outcome.text)}]}]
        )
