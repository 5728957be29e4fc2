"""otel: OpenTelemetry trace ingest over OTLP/HTTP (``POST /v1/traces``) and OTLP/gRPC, and a trace query API."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from core import ConsolePage, Host, RouterContribution, hookimpl, run_bulk
from core.context import current_workspace
from core.database import distinct_workspaces, migrated
from core.events import EventQueue

from . import hookspecs
from .decode import STATUS_ERROR, to_rows
from .events import StoredTraces
from .ingest import signals
from .logs import LogStore, by_span
from .metrics import MetricStore
from .present import bare_span_view, span_view, trace_summary
from .router import create_router
from .settings import Settings
from .store import SpanStore, traces
from .ui import pages

MIGRATIONS = Path(__file__).with_name("migrations")
READ_PAGE = 2000
"""Span rows read at a time for the assistant."""
ANALYSED_MARKERS = (b"ai.", b"llm.", b"openinference.", b"mlflow.", b"input.value", b"output.value", b"exception")
"""Bytes in a stored span that make the assistant's reader give its attributes and events (``ai.``: ``gen_ai.`` too)."""


def _store(host: Host) -> SpanStore:
    """The one span store of this app, shared by the routes, the gRPC receiver and the hooks."""

    def build() -> SpanStore:
        store = SpanStore(host.database)
        store.committed = StoredTraces(_stored_events(host))
        return store

    return host.service("otel.store", build)


def _stored_events(host: Any) -> EventQueue:
    events: EventQueue = host.service("otel.stored", lambda: EventQueue(host, "plughost_traces_stored"))
    return events


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


def _logs(host: Host) -> LogStore:
    """The one log record store of this app."""
    return host.service("otel.logs", lambda: LogStore(host.database))


def _metrics(host: Host) -> MetricStore:
    """The one GenAI metric store of this app."""
    return host.service("otel.metrics", lambda: MetricStore(host.database))


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    return RouterContribution(
        "otel", create_router(_store(host), host.plugin_settings("otel"), _logs(host), _metrics(host))
    )


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage:
    return ConsolePage("otel", pages, "Traces", "/traces")


@hookimpl
def plughost_lifespan(host: Any) -> list[contextlib.AbstractAsyncContextManager[Any]]:
    store = _store(host)
    lifespans: list[contextlib.AbstractAsyncContextManager[Any]] = [
        migrated(host.database, MIGRATIONS, "otel"),
        _stored_events(host).running(),
        contextlib.aclosing(store),
    ]
    if host.plugin_settings("otel").grpc_address:
        from .grpc_receiver import receiver_config, serving  # grpc is imported only when it serves

        lifespans.append(_grpc_noted(host, serving(signals(store, _logs(host), _metrics(host)), receiver_config(host))))
    return lifespans


def _grpc_listening(host: Host) -> dict[str, bool]:
    """``{"listening": bool}``: whether OTLP/gRPC serves, for the start-up log."""
    return host.service("otel.grpc", lambda: {"listening": False})


@contextlib.asynccontextmanager
async def _grpc_noted(host: Host, serving: contextlib.AbstractAsyncContextManager[Any]) -> Any:
    async with serving as server:
        _grpc_listening(host)["listening"] = server is not None
        yield server


@hookimpl
def plughost_addresses(host: Host, base_url: str) -> list[tuple[str, str]]:
    """OTLP/HTTP on the server's port; OTLP/gRPC where it listens, or why not."""
    address = host.plugin_settings("otel").grpc_address
    if not address:
        grpc = "off (PLUGHOST_OTEL_GRPC_ADDRESS is empty)"
    else:
        grpc = address if _grpc_listening(host)["listening"] else f"off (could not listen on {address}; see above)"
    return [("OTLP/HTTP", f"{base_url}/v1/traces"), ("OTLP/gRPC", grpc)]


@hookimpl(optionalhook=True)
def plughost_workspaces(host: Any) -> Awaitable[list[str]]:
    """The workspaces that hold traces (for the workspace plugin's ``GET /api/workspaces``)."""
    return distinct_workspaces(host.database, traces)


@hookimpl(optionalhook=True)
def plughost_trace_reader(host: Any) -> Any:
    """For the assistant: read one trace in the current workspace, as ``GET /api/otel/traces/{id}`` answers it."""
    store, logs = _store(host), _logs(host)

    async def read(trace_id: str) -> dict[str, Any] | None:
        """The spans' readable fields (not their OTLP/JSON, which no analysis reads), made a page
        of rows at a time off the event loop: the stored rows of a huge trace are never all held.
        A span that is not an error and whose bytes hold none of :data:`ANALYSED_MARKERS` comes
        without attributes and events (see the hook): most spans of a big trace are not parsed."""
        workspace = current_workspace()
        summary = await store.get_summary(workspace, trace_id)
        if summary is None:
            return None
        counted = await store.counted_spans(workspace, trace_id)
        records = await logs.for_trace(workspace, trace_id)
        span_logs = by_span(records)
        views: list[dict[str, Any]] = []
        async for rows in store.span_pages(workspace, trace_id, READ_PAGE):
            views += await run_bulk(_analysis_views, rows, counted, span_logs)
        return {**trace_summary(summary), "spans": views, "logs": records}

    return read


def _analysis_views(
    rows: list[dict[str, Any]], counted: dict[str, bool], logs: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    return [
        span_view(row, counted=counted.get(row["span_id"]), logs=logs.get(row["span_id"], ()), otlp=False)
        if row["status_code"] == STATUS_ERROR
        or row["span_id"] in logs
        or any(marker in row["span"] for marker in ANALYSED_MARKERS)
        else bare_span_view(row)
        for row in rows
    ]


@hookimpl(optionalhook=True)
def plughost_job_types(host: Any) -> list[Any]:
    """For the jobs plugin: trace retention and trace export (imported here, so otel loads without jobs)."""
    from .jobs import JOB_TYPES

    return JOB_TYPES


@hookimpl(optionalhook=True)
def plughost_job_schedules(host: Any) -> Any:
    """For the jobs plugin: the daily ``otel.retention`` schedule when ``PLUGHOST_OTEL_RETENTION_DAYS`` is set."""
    days = host.plugin_settings("otel").retention_days
    if days is None:
        return None
    from plugins.jobs.hookspecs import Schedule

    return Schedule("otel.retention", "otel.retention", {"days": days}, cron="17 3 * * *")


@hookimpl
def plughost_span_exporter(host: Any) -> Any:
    """For plugins that trace their own work (the gateway): store OTLP spans as ``POST /v1/traces`` would."""
    store = _store(host)

    async def export(request: Any, *, workspace: str, project: str = "default") -> None:
        await store.add(to_rows(request, workspace=workspace, project=project).rows)

    return export
