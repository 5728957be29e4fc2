"""otel: OpenTelemetry trace ingest over OTLP/HTTP (``POST /v1/traces``) and OTLP/gRPC, and a trace query API."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from core import ConsolePage, Host, RouterContribution, hookimpl, run_bulk
from core.database import migrated

from .decode import to_rows
from .grpc_receiver import receiver_config, serving
from .present import span_view, trace_summary
from .router import create_router
from .settings import Settings
from .store import SpanStore
from .ui import pages

MIGRATIONS = Path(__file__).with_name("migrations")


def _store(host: Host) -> SpanStore:
    """The one span store of this app, shared by the routes, the gRPC receiver and the hooks."""
    return host.service("otel.store", lambda: SpanStore(host.database))


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    return RouterContribution("otel", create_router(_store(host), host.plugin_settings("otel")))


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage:
    return ConsolePage("otel", pages, "Traces", "/traces")


@hookimpl
def plughost_lifespan(host: Any) -> list[contextlib.AbstractAsyncContextManager[Any]]:
    return [migrated(host.database, MIGRATIONS, "otel"), serving(_store(host), receiver_config(host))]


@hookimpl(optionalhook=True)
def plughost_trace_reader(host: Any) -> Any:
    """For the assistant: read one trace in the current workspace, as ``GET /api/otel/traces/{id}`` answers it."""
    store = _store(host)

    async def read(trace_id: str) -> dict[str, Any] | None:
        found = await store.get_trace(trace_id)
        if found is None:
            return None
        summary, rows = found
        views = await run_bulk(lambda: [span_view(row) for row in rows])
        return {**trace_summary(summary), "spans": views}

    return read


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
