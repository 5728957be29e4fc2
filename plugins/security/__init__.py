"""security: allowed hosts (DNS rebinding), cross-origin write protection, CORS, security headers on every
response, and who may do what: one optional token, or accounts (users and API keys with a role per
workspace, ``PLUGHOST_SECURITY_AUTH=users``). Outermost of the middlewares."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import click

from core import ConsolePage, MiddlewareContribution, RouterContribution, hookimpl
from core.access import AccessRefused, IngestAuthorizer
from core.database import migrated
from core.events import EventQueue

from . import hookspecs
from .access import served_workspace
from .accounts import Accounts
from .cli import keys, users
from .counters import counters_for
from .credentials import token_matches
from .gateway_limits import GatewayLimits
from .middleware import SecurityMiddleware
from .router import create_router
from .settings import Settings
from .store import AccountStore
from .ui import SESSION_SCRIPT, SESSION_STYLE, pages

MIGRATIONS = Path(__file__).with_name("migrations")


def _limits(host: Any) -> GatewayLimits | None:
    """With accounts on: the gateway limits of keys, counted in Redis (``PLUGHOST_REDIS_URL``) or the database,
    spend priced by the server's pricing (``host.pricing``), refusals told through ``plughost_gateway_key_refused``."""
    if _accounts(host) is None:
        return None

    def build() -> GatewayLimits:
        refusals = _refusals(host)
        counters = counters_for(host.settings.redis_url, host.database)
        return GatewayLimits(counters, host.pricing, lambda refusal: refusals.emit(host=host, refusal=refusal))

    limits: GatewayLimits = host.service("security.limits", build)
    return limits


def _refusals(host: Any) -> EventQueue:
    """``plughost_gateway_key_refused`` events of this app, delivered while it runs."""
    refusals: EventQueue = host.service("security.refusals", lambda: EventQueue(host, "plughost_gateway_key_refused"))
    return refusals


def _settings(host: Any) -> Settings:
    settings: Settings = host.plugin_settings("security")
    return settings


def _accounts(host: Any) -> Accounts | None:
    """The app's accounts when they are on (``PLUGHOST_SECURITY_AUTH=users``), else ``None``."""
    settings = _settings(host)
    if settings.auth != "users":
        return None
    accounts: Accounts = host.service(
        "security.accounts", lambda: Accounts(AccountStore(host.database), settings.credential_cache_seconds)
    )
    return accounts


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_middlewares(host: Any) -> MiddlewareContribution:
    factory = partial(
        SecurityMiddleware,
        page_shell=host.is_page_shell,
        accounts=_accounts(host),
        limits=_limits(host),
        workspaces=host.is_enabled("workspace"),
    )
    return MiddlewareContribution("security", factory, before=("workspace", "timing"))


@hookimpl
def plughost_routers(host: Any) -> RouterContribution | None:
    accounts = _accounts(host)
    if accounts is None:
        return None
    limits = _limits(host)
    assert limits is not None
    return RouterContribution("security", create_router(accounts, limits, _settings(host)))


@hookimpl
def plughost_lifespan(host: Any) -> list[Any]:
    accounts = _accounts(host)
    if accounts is None:
        return []
    return [
        migrated(host.database, MIGRATIONS, "security"),
        accounts.recording_use(),
        _closing_counters(host),
        _refusals(host).running(),
    ]


@contextlib.asynccontextmanager
async def _closing_counters(host: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        limits = _limits(host)
        if limits is not None:
            await limits.counters.close()


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage | None:
    """With accounts on: the sign-in form, the Accounts page, and who is signed in on every page."""
    if _accounts(host) is None:
        return None
    return ConsolePage(
        "security",
        pages,
        "Accounts",
        "/accounts",
        scripts=(SESSION_SCRIPT,),
        styles=(SESSION_STYLE,),
        after=("assistant", "gateway", "jobs", "otel"),
    )


@hookimpl
def plughost_commands(cli: click.Group) -> list[click.Command]:
    return [keys, users]


@hookimpl
def plughost_authentication(host: Any) -> str | None:
    settings = _settings(host)
    if settings.auth == "users":
        return "accounts and API keys (PLUGHOST_SECURITY_AUTH=users)"
    return "the bearer token (PLUGHOST_SECURITY_TOKEN)" if settings.token is not None else None


@hookimpl
def plughost_ingest_authorizer(host: Any) -> IngestAuthorizer:
    """OTLP/gRPC asks what the middleware asks of ``POST /v1/traces``: the token, or a key that may write."""
    settings = _settings(host)
    accounts = _accounts(host)
    token = settings.token.get_secret_value().encode() if settings.token else None

    async def authorize(metadata: Mapping[str, str], workspace: str) -> str:
        if accounts is not None:
            principal = await accounts.key_principal(metadata)
            return served_workspace(principal, "POST", "/v1/traces", workspace, workspace)
        if token is not None and not token_matches(metadata, token):
            raise AccessRefused(401, "missing or wrong bearer token (PLUGHOST_SECURITY_TOKEN)")
        return workspace

    return authorize
