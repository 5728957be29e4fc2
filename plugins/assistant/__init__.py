"""assistant: trace analysis that works offline, and an LLM explanation through the gateway. Localhost only."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from core import ConsolePage, RouterContribution, hookimpl
from core.access import authentication
from core.database import migrated

from . import hookspecs
from .batch import BatchAnalysis, batch_analysis
from .policy import undeclared
from .router import create_router
from .settings import Settings
from .store import ConversationStore
from .ui import console_page

MIGRATIONS = Path(__file__).with_name("migrations")


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    settings: Settings = host.plugin_settings("assistant")
    if settings.allow_remote and authentication(host) is None:
        raise ValueError(
            "PLUGHOST_ASSISTANT_ALLOW_REMOTE needs authenticated requests: enable the security plugin with "
            "PLUGHOST_SECURITY_TOKEN set, or with accounts (PLUGHOST_SECURITY_AUTH=users)"
        )
    hook = host.plugins.manager.hook
    trace_reader = getattr(hook, "plughost_trace_reader", None)  # offered by otel, when it is installed
    router = create_router(
        None if trace_reader is None else trace_reader(host=host),
        hook.plughost_chat_model(host=host),
        ConversationStore(host.database, settings.conversation_hours * 3600),
        settings,
    )
    missing = undeclared(router)
    if missing:
        raise ValueError(f"routes without a remote-access policy: {', '.join(missing)}")
    return RouterContribution("assistant", router)


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage:
    return console_page()


@hookimpl(optionalhook=True)
def plughost_job_types(host: Any) -> Any:
    """``assistant.batch_analysis``: the traces that match a filter, analysed into one stored report."""
    from plugins.jobs.hookspecs import JobType

    return JobType(
        "assistant.batch_analysis",
        batch_analysis,
        BatchAnalysis,
        timeout_seconds=1800,
        description=(
            "Analyse the traces that match a filter (service, status, a time window, list-API filters) into a report"
        ),
    )


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    return migrated(host.database, MIGRATIONS, "assistant")
