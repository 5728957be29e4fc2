"""gateway: an LLM gateway. Stored, encrypted provider credentials; endpoints over models with
traffic split and fallback; native, OpenAI- and Anthropic-compatible routes; streaming."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core import RouterContribution, hookimpl
from core.database import migrate

from .crypto import Envelope
from .router import Gateway, create_router
from .settings import Settings
from .store import GatewayStore

MIGRATIONS = Path(__file__).with_name("migrations")


def _gateway(host: Any) -> Gateway:
    def build() -> Gateway:
        settings: Settings = host.plugin_settings("gateway")
        envelope = Envelope.load(settings.kek.get_secret_value() if settings.kek else None, host.data_dir)
        return Gateway(GatewayStore(host.database, envelope, settings.config_cache_seconds), settings)

    return host.service("gateway", build)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    return RouterContribution("gateway", create_router(_gateway(host)))


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    gateway = _gateway(host)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        await migrate(host.database, MIGRATIONS, "gateway")
        await gateway.start()
        writer = asyncio.create_task(gateway.store.write_usage_forever())
        try:
            yield
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await gateway.close()

    return running()
