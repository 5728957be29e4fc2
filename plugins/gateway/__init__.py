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

from .batch import BatchParams, run_batch
from .batch_router import create_batch_router
from .crypto import Envelope
from .providers import Chat, TextDelta
from .router import CallFailed, Gateway, create_router
from .settings import Settings
from .store import GatewayStore

MIGRATIONS = Path(__file__).with_name("migrations")


def _gateway(host: Any) -> Gateway:
    def build() -> Gateway:
        settings: Settings = host.plugin_settings("gateway")
        return Gateway(GatewayStore(host.database, settings.config_cache_seconds), settings)

    return host.service("gateway", build)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> list[RouterContribution]:
    return [
        RouterContribution("gateway", create_router(_gateway(host))),
        RouterContribution("gateway-batch", create_batch_router(host.data_dir, host.is_enabled("jobs"))),
    ]


@hookimpl(optionalhook=True)
def plughost_job_types(host: Any) -> Any:
    """Batch inference over an uploaded JSONL file (see the OpenAI-compatible ``/gateway/v1/batches``)."""
    from plugins.jobs.hookspecs import JobType

    return JobType("gateway.batch", run_batch, BatchParams, description="Run a JSONL of OpenAI chat requests through endpoints", timeout_seconds=24 * 3600)


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    gateway = _gateway(host)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        await migrate(host.database, MIGRATIONS, "gateway")
        kek = gateway.settings.kek
        gateway.store.envelope = Envelope.load(kek.get_secret_value() if kek else None, host.data_dir)
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


@hookimpl(optionalhook=True)
def plughost_chat_model(host: Any) -> Any:
    """For the assistant: stream an endpoint's answer to chat messages, as text pieces."""
    gateway = _gateway(host)

    async def chat(endpoint: str, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        try:
            items = await gateway.stream(endpoint, Chat(messages=messages, stream=True))
        except CallFailed as error:
            raise (LookupError if error.status == 404 else RuntimeError)(str(error)) from None

        async def text() -> AsyncIterator[str]:
            async for item in items:
                if isinstance(item, TextDelta):
                    yield item.text

        return text()

    return chat
