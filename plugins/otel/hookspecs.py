"""Hooks the otel plugin offers to other plugins (added through ``plughost_addhooks``).

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads where otel is
not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypedDict

from core.hookspecs import hookspec


@dataclass(frozen=True)
class TraceQuery:
    """Which traces :meth:`TraceReader.list_traces` gives: the filters of ``GET /api/otel/traces``, by the
    same names, all of which must hold (``None``: not filtered)."""

    service: str | None = None
    project: str | None = None
    status: Literal["ok", "error"] | None = None
    start_after: datetime | None = None
    """Traces that started at or after this moment (UTC when it has no offset)."""
    start_before: datetime | None = None
    min_duration_ms: float | None = None
    name: str | None = None
    """Traces with a span of this name."""
    model: str | None = None
    """Traces with an LLM call to this model (requested or answering), in any convention."""
    min_tokens: int | None = None
    session: str | None = None
    """Traces of this session (``session.id``, ``gen_ai.conversation.id``, ...)."""
    attributes: Mapping[str, str] = field(default_factory=dict)
    """Traces with a span whose attribute ``key`` has this value, compared as text (``attr.<key>``)."""
    sort: str = "-start_time"
    """The list's order, as ``sort`` of the API: ``start_time``, ``duration``, ``tokens``, ``spans``, ``errors``
    or ``cost``, descending with a leading ``-``."""


class TracePage(TypedDict):
    traces: list[dict[str, Any]]
    """Trace summaries, newest first, as ``GET /api/otel/traces`` gives them."""
    next_page_token: str | None
    """Give it as ``page_token`` for the next page; ``None`` after the last."""


class TraceColumns(TypedDict):
    """A trace's spans by column, for a reader of every span that wants no dict per span (a 100,000-span
    trace): the span at index ``i`` of every sequence is the same span, in start order."""

    trace_id: str
    span_ids: Sequence[str]
    parent_span_ids: Sequence[str | None]
    names: Sequence[str]
    service_names: Sequence[str]
    starts: Sequence[int]
    """``start_time_unix_nano`` of each span."""
    ends: Sequence[int]
    """``end_time_unix_nano`` of each span."""
    details: dict[int, dict[str, Any]]
    """Index -> the span as :meth:`TraceReader.read` with ``lean=True`` gives it, for the spans that such a
    read parses (errors, spans with an exception event, a log record or an LLM attribute), in span order.
    Every other span has no status message, attributes, events, links or ``genai`` facts."""


class TraceReader(Protocol):
    """Reads the stored traces of a workspace (the request's, when ``workspace`` is ``None``)."""

    async def list_traces(
        self,
        query: TraceQuery | None = None,
        *,
        limit: int = 100,
        page_token: str | None = None,
        workspace: str | None = None,
    ) -> TracePage:
        """A page of trace summaries in ``query.sort`` order (newest first by default). ``ValueError`` for a bad
        token, sort or filter."""
        ...

    async def read(self, trace_id: str, *, workspace: str | None = None, lean: bool = False) -> dict[str, Any] | None:
        """One trace as ``GET /api/otel/traces/{trace_id}`` answers it (summary fields, ``spans`` in
        start order, ``logs``; no ``tree``, no span's ``otlp``), or ``None``. ``lean=True``: a span that
        is not an error, has no exception event, no log record and no LLM attribute comes with empty
        ``attributes``, ``events`` and ``links``, so that most spans of a big trace are never parsed.
        A fresh dict on each call: the caller owns it. For a big trace prefer :meth:`pieces`."""
        ...

    async def columns(self, trace_id: str, *, workspace: str | None = None) -> TraceColumns | None:
        """The trace's spans by column (what a lean :meth:`read` says of them, without a dict per span),
        or ``None``. A fresh answer on each call: the caller owns it."""
        ...

    def pieces(
        self, trace_id: str, *, size: int = 2000, workspace: str | None = None, lean: bool = False
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The trace's spans (as in :meth:`read`) in start order, ``size`` at a time, so that a trace
        of any size is never held whole; nothing for an unknown trace."""
        ...

    async def summaries(self, workspace: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        """The summaries (as :meth:`list_traces` gives them) of those of ``trace_ids`` that are stored."""
        ...


@hookspec(firstresult=True)
def plughost_trace_reader(host: Any) -> TraceReader | None:
    """Provide the reader other plugins read traces with, inside the server.

    Called by any plugin that reads traces (the assistant, once per app build), with
    ``host.plugins.manager.hook.plughost_trace_reader(host=host)``; the otel plugin implements it,
    and the first plugin to return a reader wins. Return a :class:`TraceReader`, or ``None``.
    The hook exists only where otel (or another provider of these specs) is installed: look it up
    with ``getattr(hook, "plughost_trace_reader", None)``. Its coroutines run on the event loop
    and do their CPU-heavy work off it (``core.run_bulk``).

    Example::

        @hookimpl
        def plughost_routers(host):
            reader = host.plugins.manager.hook.plughost_trace_reader(host=host)
            ...
            page = await reader.list_traces(TraceQuery(status="error"), limit=20)
    """


@hookspec
def plughost_traces_stored(workspace: str, project: str, trace_ids: list[str], traces: list[dict[str, Any]]) -> None:
    """React to stored traces without polling.

    Called after each committed ingest (``POST /v1/traces``, OTLP/gRPC, and the spans other
    plugins store through ``plughost_span_exporter``), once per workspace and project it
    touched, in the process that stored them, with the ids of the traces that got spans (new
    traces and ones that grew) and ``traces``, their summaries as ``GET /api/otel/traces`` gives
    them (status, duration, span and error counts, tokens, ...), read once the ingest is committed
    (so they hold its spans, and may hold later ones). Take only
    the arguments you need. Read a trace's spans with the ``plughost_trace_reader`` reader (or
    ``GET /api/otel/traces/{trace_id}``) in that workspace. Never on the ingest's path: the ids
    are gathered in a bulk thread, and events wait in a bounded queue (dropped, and counted,
    when it is full) and are delivered one at a time; ``async def`` implementations are
    awaited, plain ones run in a thread, each for at most 10 s, and one that raises is logged
    with its plugin's name. Return nothing.

    Example::

        @hookimpl(optionalhook=True)
        async def plughost_traces_stored(workspace, project, traces):
            failed = [trace["trace_id"] for trace in traces if trace["status"] == "error"]
            await webhooks.notify(workspace, project, failed)
    """
