"""The trace reader other plugins get through ``plughost_trace_reader``: the query API's answers, without HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core import empty, run_bulk
from core.context import current_workspace

from .conventions import StoredCall
from .decode import INT64_MAX, STATUS_ERROR
from .hookspecs import TraceColumns, TracePage, TraceQuery
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

    async def columns(self, trace_id: str, *, workspace: str | None = None) -> TraceColumns | None:
        workspace = workspace or current_workspace()
        summary = await self.store.get_summary(workspace, trace_id.lower())
        if summary is None:
            return None
        trace_id = summary["trace_id"]
        logs = by_span(await self.logs.for_trace(workspace, trace_id))
        rows: list[Sequence[Any]] = []
        async for page in self.store.span_tuples(workspace, trace_id, READ_PAGE, columns=COLUMNS):
            rows += page
        columns, parsed = await run_bulk(_columns, trace_id, rows, logs)
        if parsed:
            calls = await self.store.stored_calls(workspace, trace_id)
            stored = await self.store.get_spans(workspace, trace_id, [columns["span_ids"][i] for i in parsed])
            columns["details"] = await run_bulk(_details, columns["span_ids"], parsed, stored, calls, logs)
        return columns

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
        if not lean or _parsed(row["span_id"], row["status_code"], row["span"], logs)
        else bare_span_view(row)
        for row in rows
    ]


def _parsed(span_id: str, status_code: int, span: bytes, logs: Mapping[str, object]) -> bool:
    """Whether a lean read parses the span: an error, a span with a log record, or one whose bytes
    hold one of :data:`ANALYSED_MARKERS`."""
    return status_code == STATUS_ERROR or span_id in logs or ANALYSED_MARKERS.search(span) is not None


COLUMNS = ("span_id", "parent_span_id", "name", "service_name", "start_ns", "end_ns", "status_code", "span")
"""The span columns a columnar read takes, in this order."""


def _columns(trace_id: str, rows: list[Sequence[Any]], logs: Mapping[str, object]) -> tuple[TraceColumns, list[int]]:
    """The rows (of :data:`COLUMNS`) by column, with no ``details`` yet, and the indexes of the spans a lean
    read parses. Empties ``rows``, a row at a time (see ``core.empty``)."""
    by_column = zip(*rows, strict=True) if rows else [()] * len(COLUMNS)
    span_ids, parent_span_ids, names, service_names, starts, ends, status_codes, blobs = by_column
    empty(rows)
    parsed = [
        index
        for index, (span_id, status_code, span) in enumerate(zip(span_ids, status_codes, blobs, strict=True))
        if _parsed(span_id, status_code, span, logs)
    ]
    columns: TraceColumns = {
        "trace_id": trace_id,
        "span_ids": span_ids,
        "parent_span_ids": parent_span_ids,
        "names": names,
        "service_names": service_names,
        "starts": starts,
        "ends": ends,
        "details": {},
    }
    return columns, parsed


def _details(
    span_ids: Sequence[str],
    parsed: list[int],
    stored: list[dict[str, Any]],
    calls: dict[str, StoredCall],
    logs: dict[str, list[dict[str, Any]]],
) -> dict[int, dict[str, Any]]:
    """The views of the parsed spans by index, in span order (a span deleted since its row was read is left out)."""
    rows = {row["span_id"]: row for row in stored}
    return {
        index: span_view(row, call=calls.get(span_id), logs=logs.get(span_id, ()), otlp=False)
        for index in parsed
        if (row := rows.get(span_id := span_ids[index])) is not None
    }
