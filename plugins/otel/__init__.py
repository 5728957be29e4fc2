"""otel: OpenTelemetry trace ingest over OTLP/HTTP (``POST /v1/traces``) and OTLP/gRPC, and a trace query API."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from core import ConsolePage, Host, RouterContribution, hookimpl, run_bulk
from core.database import distinct_workspaces, migrated
from core.events import EventQueue

from . import hookspecs
from .decode import to_rows
from .events import StoredTraces
from .ingest import signals
from .logs import LogStore
from .metrics import MetricStore
from .reader import StoredTraceReader, summaries
from .router import create_router
from .settings import Settings
from .store import SpanStore
from .tables import traces
from .ui import pages, session_pages

MIGRATIONS = Path(__file__).with_name("migrations")


def _store(host: Host) -> SpanStore:
    """The one span store of this app, shared by the routes, the gRPC receiver and the hooks."""

    def build() -> SpanStore:
        store = SpanStore(host.database, host.pricing)
        store.committed = StoredTraces(_stored_events(host), functools.partial(summaries, store))
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
def plughost_console_pages(host: Any) -> list[ConsolePage]:
    return [
        ConsolePage("otel", pages, "Traces", "/traces"),
        ConsolePage("otel-sessions", session_pages, "Sessions", "/sessions", after=("otel",), before=("jobs",)),
    ]


@hookimpl
def plughost_lifespan(host: Any) -> list[contextlib.AbstractAsyncContextManager[Any]]:
    store = _store(host)
    lifespans: list[contextlib.AbstractAsyncContextManager[Any]] = [
        migrated(host.database, MIGRATIONS, "otel"),
        _stored_events(host).running(),
        store,
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


@hookimpl
def plughost_trace_reader(host: Any) -> hookspecs.TraceReader:
    """For other plugins (the assistant): the stored traces, read as the query API answers."""
    reader: hookspecs.TraceReader = host.service("otel.reader", lambda: StoredTraceReader(_store(host), _logs(host)))
    return reader


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
        decoded = await run_bulk(
            lambda: to_rows(request, workspace=workspace, project=project, pricing=store.pricing)
        )  # off the event loop: pricing the calls loads the price data the first time
        await store.add(decoded.rows)

    return export
