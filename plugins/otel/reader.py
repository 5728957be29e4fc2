"""The trace reader other plugins get through ``plughost_trace_reader``: the query API's answers, without HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from core import run_bulk
from core.context import current_workspace

from .conventions import StoredCall
from .decode import INT64_MAX, STATUS_ERROR
from .hookspecs import TracePage, TraceQuery
from .logs import LogStore, by_span
from .present import bare_span_view, span_view, trace_summary
from .sorting import Order
from .store import SpanStore, TraceFilter

READ_PAGE = 2000
"""Span rows read at a time."""
ANALYSED_MARKERS = re.compile(rb"ai\.|llm\.|openinference\.|mlflow\.|input\.value|output\.value|exception")
"""Bytes in a stored span that make a lean read give its attributes and events (``ai.``: ``gen_ai.`` too);
one search of the span's bytes (seven ``in`` tests cost twice the rest of a lean read)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StoredTraceReader:
    """:class:`~plugins.otel.hookspecs.TraceReader` over the app's span and log stores."""

    def __init__(self, store: SpanStore, logs: LogStore) -> None:
        self.store = store
        self.logs = logs

    async def list_traces(
        self,
        query: TraceQuery | None = None,
        *,
        limit: int = 100,
        page_token: str | None = None,
        workspace: str | None = None,
    ) -> TracePage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = query or TraceQuery()
        page, token = await self.store.list_traces(
            trace_filter(query), limit, page_token, Order.parse(query.sort), workspace=workspace or current_workspace()
        )
        return {"traces": [trace_summary(row) for row in page], "next_page_token": token}

    async def read(self, trace_id: str, *, workspace: str | None = None, lean: bool = False) -> dict[str, Any] | None:
        workspace = workspace or current_workspace()
        summary = await self.store.get_summary(workspace, trace_id.lower())
        if summary is None:
            return None
        records = await self.logs.for_trace(workspace, summary["trace_id"])
        spans: list[dict[str, Any]] = []
        async for views in self._views(summary["trace_id"], workspace, READ_PAGE, lean, by_span(records)):
            spans += views
        return {**trace_summary(summary), "spans": spans, "logs": records}

    async def pieces(
        self, trace_id: str, *, size: int = READ_PAGE, workspace: str | None = None, lean: bool = False
    ) -> AsyncIterator[list[dict[str, Any]]]:
        if size < 1:
            raise ValueError("size must be at least 1")
        workspace = workspace or current_workspace()
        records = await self.logs.for_trace(workspace, trace_id.lower())
        async for views in self._views(trace_id.lower(), workspace, size, lean, by_span(records)):
            yield views

    async def summaries(self, workspace: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        return await summaries(self.store, workspace, trace_ids)

    async def _views(
        self, trace_id: str, workspace: str, size: int, lean: bool, logs: dict[str, list[dict[str, Any]]]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The span views in start order, a page of rows at a time, made off the event loop."""
        calls = await self.store.stored_calls(workspace, trace_id)
        async for rows in self.store.span_pages(workspace, trace_id, size):
            yield await run_bulk(_span_views, rows, calls, logs, lean)


async def summaries(store: SpanStore, workspace: str, trace_ids: list[str]) -> list[dict[str, Any]]:
    """The summaries of those traces that are stored, as the list API gives them."""
    return [trace_summary(row) for row in await store.get_summaries(workspace, [i.lower() for i in trace_ids])]


def trace_filter(query: TraceQuery) -> TraceFilter:
    """The store's filter for ``query``; ``ValueError`` for a moment outside what 64-bit nanoseconds hold."""
    return TraceFilter(
        service=query.service,
        project=query.project,
        status=query.status,
        start_after_ns=nanoseconds(query.start_after, "start_after"),
        start_before_ns=nanoseconds(query.start_before, "start_before"),
        min_duration_ns=None
        if query.min_duration_ms is None
        else min(int(query.min_duration_ms * 1_000_000), INT64_MAX),
        attributes=tuple(query.attributes.items()),
        span_name=query.name,
        model=query.model,
        min_tokens=query.min_tokens,
        session=query.session,
    )


def nanoseconds(moment: datetime | None, name: str) -> int | None:
    """Nanoseconds since 1970 (a moment without offset is UTC); ``ValueError`` outside what 64 bits hold."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    value = (moment - EPOCH) // timedelta(microseconds=1) * 1000
    if not -INT64_MAX <= value <= INT64_MAX:
        raise ValueError(f"{name} must be between 1677-09-22 and 2262-04-11")
    return value


def _span_views(
    rows: list[dict[str, Any]], calls: dict[str, StoredCall], logs: dict[str, list[dict[str, Any]]], lean: bool
) -> list[dict[str, Any]]:
    """The spans' readable fields (never their OTLP/JSON, which no reader of this kind reads). ``lean``: a
    span that is not an error, has no log record and whose bytes hold none of :data:`ANALYSED_MARKERS`
    comes without attributes and events: most spans of a big trace are never parsed."""
    return [
        span_view(row, call=calls.get(row["span_id"]), logs=logs.get(row["span_id"], ()), otlp=False)
        if not lean
        or row["status_code"] == STATUS_ERROR
        or row["span_id"] in logs
        or ANALYSED_MARKERS.search(row["span"])
        else bare_span_view(row)
        for row in rows
    ]
