"""otel: OpenTelemetry OTLP/HTTP trace ingest (``POST /v1/traces``) and a trace query API."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from core import RouterContribution, hookimpl
from core.database import migrated

from .decode import to_rows
from .present import span_view, trace_summary
from .router import create_router
from .settings import Settings
from .store import SpanStore

MIGRATIONS = Path(__file__).with_name("migrations")


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    store = host.service("otel.store", lambda: SpanStore(host.database))
    return RouterContribution("otel", create_router(store, host.plugin_settings("otel")))


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    return migrated(host.database, MIGRATIONS, "otel")


@hookimpl(optionalhook=True)
def plughost_trace_reader(host: Any) -> Any:
    """For the assistant: read one trace in the current workspace, as ``GET /api/otel/traces/{id}`` answers it."""
    store = host.service("otel.store", lambda: SpanStore(host.database))

    async def read(trace_id: str) -> dict[str, Any] | None:
        found = await store.get_trace(trace_id)
        if found is None:
            return None
        summary, rows = found
        return {**trace_summary(summary), "spans": [span_view(row) for row in rows]}

    return read


@hookimpl
def plughost_span_exporter(host: Any) -> Any:
    """For plugins that trace their own work (the gateway): store OTLP spans as ``POST /v1/traces`` would."""
    store = host.service("otel.store", lambda: SpanStore(host.database))

    async def export(request: Any, *, workspace: str, project: str = "default") -> None:
        await store.add(to_rows(request, workspace=workspace, project=project).rows)

    return export
