"""gateway: an LLM gateway. Stored, encrypted provider credentials; endpoints over models with
traffic split and fallback; native, OpenAI- and Anthropic-compatible routes; streaming."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

from core import ConsolePage, Host, RouterContribution, hookimpl
from core.database import distinct_workspaces, migrate
from core.events import EventQueue

from . import hookspecs
from .batch import BatchParams, run_batch
from .batch_router import create_batch_router
from .calls import Call, CallFailed, Gateway
from .crypto import Envelope
from .router import create_router
from .settings import Settings
from .store import GatewayStore, endpoints
from .tracing import Tracer
from .ui import pages

MIGRATIONS = Path(__file__).with_name("migrations")

if importlib.util.find_spec("aiohttp") is None:
    # aiohttp is imported on the first provider call (.upstream), not at start-up; without it, the plugin
    # still fails to load, naming it, as when it was imported here.
    raise ModuleNotFoundError("No module named 'aiohttp'", name="aiohttp")


def _gateway(host: Host) -> Gateway:
    def build() -> Gateway:
        settings: Settings = host.plugin_settings("gateway")
        exporter = host.plugins.manager.hook.plughost_span_exporter(host=host) if settings.tracing else None
        tracer = Tracer(
            exporter,
            queue_size=settings.trace_queue_size,
            capture_content=settings.trace_content,
            project=settings.trace_project,
            pricing=host.pricing,
        )
        calls = _calls(host)
        store = GatewayStore(host.database, settings.config_cache_seconds, host.pricing)
        return Gateway(store, settings, tracer, calls.emit)

    return host.service("gateway", build)


def _calls(host: Any) -> EventQueue:
    """``plughost_gateway_call`` events of this app, delivered while the gateway runs."""
    calls: EventQueue = host.service("gateway.calls", lambda: EventQueue(host, "plughost_gateway_call"))
    return calls


def _jobs_client(host: Any) -> Any:
    """The jobs plugin's public ``JobsClient``; ``None`` when the jobs plugin is not enabled."""
    hook = getattr(host.plugins.manager.hook, "plughost_jobs_client", None)
    return None if hook is None or not host.is_enabled("jobs") else hook(host=host)


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> list[RouterContribution]:
    return [
        RouterContribution("gateway", create_router(_gateway(host))),
        RouterContribution("gateway-batch", create_batch_router(host.data_dir, lambda: _jobs_client(host))),
    ]


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage:
    """The Gateway pages: configuration forms, a streaming playground and usage charts."""
    return ConsolePage("gateway", pages, "Gateway", "/gateway", after=("jobs",))


@hookimpl(optionalhook=True)
def plughost_job_types(host: Any) -> Any:
    """Batch inference over an uploaded JSONL file (see the OpenAI-compatible ``/gateway/v1/batches``)."""
    from plugins.jobs.hookspecs import JobType

    return JobType(
        "gateway.batch",
        run_batch,
        BatchParams,
        description="Run a JSONL of OpenAI chat requests through endpoints",
        timeout_seconds=24 * 3600,
    )


@hookimpl(optionalhook=True)
async def plughost_gateway_key_refused(host: Any, refusal: dict[str, Any]) -> None:
    """A call a key's limits refused before it got here (the security plugin's event): counted in the usage
    per key (``GET /api/gateway/usage/keys``)."""
    await _gateway(host).store.record_refusal(**refusal)


@hookimpl(optionalhook=True)
def plughost_workspaces(host: Any) -> Awaitable[list[str]]:
    """The workspaces that have gateway endpoints (for the workspace plugin's ``GET /api/workspaces``)."""
    return distinct_workspaces(host.database, endpoints)


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    gateway = _gateway(host)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        await migrate(host.database, MIGRATIONS, "gateway")
        kek = gateway.settings.kek
        gateway.store.envelope = Envelope.load(kek.get_secret_value() if kek else None, host.data_dir)
        usage_writer = asyncio.create_task(gateway.store.write_usage())
        exporter = asyncio.create_task(gateway.tracer.export_forever()) if gateway.tracer.enabled else None
        try:
            async with _calls(host).running():
                yield
        finally:
            gateway.store.stop_writing_usage()
            await usage_writer
            if exporter is not None:
                gateway.tracer.stop_exporting()
                await exporter
            await gateway.close()

    return running()


@hookimpl(optionalhook=True)
def plughost_chat_model(host: Any) -> Any:
    """For the assistant: stream an endpoint's answer to chat messages, as text pieces."""
    gateway = _gateway(host)

    async def chat(endpoint: str, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        try:
            batches = await gateway.stream(
                endpoint, Call("openai", {"model": endpoint, "messages": messages, "stream": True})
            )
        except CallFailed as error:
            raise (LookupError if error.status == 404 else RuntimeError)(str(error)) from None

        async def text() -> AsyncIterator[str]:
            async for events in batches:
                for event in events:
                    for choice in (event.payload or {}).get("choices") or ():
                        if (choice.get("delta") or {}).get("content"):
                            yield choice["delta"]["content"]

        return text()

    return chat
