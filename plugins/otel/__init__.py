"""otel: OpenTelemetry OTLP/HTTP trace ingest (``POST /v1/traces``) and a trace query API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core import RouterContribution, hookimpl
from core.database import migrate

from .router import create_router
from .settings import Settings
from .store import SpanStore

MIGRATIONS = Path(__file__).with_name("migrations")


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    return RouterContribution("otel", create_router(SpanStore(host.database), host.plugin_settings("otel")))


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    @contextlib.asynccontextmanager
    async def migrated() -> AsyncIterator[None]:
        await migrate(host.database, MIGRATIONS, "otel")
        yield

    return migrated()
