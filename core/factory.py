"""The app factory: plugins in, one FastAPI app out.

Order of assembly, and the invariants it keeps:

1. plugins are loaded and their settings validated (:mod:`core.plugins`, :mod:`core.host`);
2. every contribution hook is called once per plugin, and orders are resolved
   from hints (:mod:`core.ordering`); a method and path claimed twice is an error;
3. the core's routes come first, then plugin routers in resolved order, then the
   WSGI bridge at ``/``, always last, matched only when no native route matches
   the path (so a wrong method on a native route answers 405, not the WSGI 404);
4. plugin middlewares wrap everything, the core's error handling and request limits
   (:mod:`core.limits`) included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette._utils import get_route_path
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Scope

from . import bulk, startup
from .bridge import WSGIApp, WSGIBridge
from .contributions import ConsolePage, MiddlewareContribution, RouterContribution
from .default_wsgi import console_shells, create_default_wsgi_app
from .docs import add_offline_docs
from .errors import ClashError
from .host import Host
from .limits import RequestLimits, answer_too_large
from .openapi import with_error_responses
from .ordering import OrderingError, Resolution, resolve_order
from .plugins import PluginInfo, load_plugins
from .routes import CORE, RouteClaim, answer_method_not_allowed, check_conflicts, claims
from .settings import CoreSettings
from .shells import PageShells
from .unavailable import answer_database_errors, answer_server_error
from .validation import answer_validation_error
from .version import __version__

logger = logging.getLogger("plughost")

GIL_SWITCH_INTERVAL_SECONDS = 0.001
"""While the app runs: how long a busy worker thread keeps the GIL from the event loop (CPython's default is 5 ms)."""


@dataclass(frozen=True)
class Assembly:
    """Everything the plugins contributed, resolved and checked, before any app exists."""

    host: Host
    routers: Resolution[RouterContribution]
    middlewares: Resolution[MiddlewareContribution]
    lifespans: tuple[tuple[PluginInfo, AbstractAsyncContextManager[Any]], ...]
    wsgi_app: WSGIApp
    wsgi_owner: str
    pages: tuple[ConsolePage, ...] = ()
    """The console's pages in navigation order; none when a plugin's WSGI app replaces the console."""
    console_shells: Callable[[str], bool] | None = None
    """Whether a path is one of the console's page shells or static files; ``None`` without the console."""

    @property
    def owners(self) -> dict[str, str]:
        """Contribution name -> owning plugin, for explanations."""
        return {c.name: c.plugin for c in (*self.routers.order, *self.middlewares.order)}


class BridgeMount(Mount):
    """The WSGI bridge at ``/``. A full match is reported as partial, so the router
    prefers any native route whose path matches, even with the wrong method (405)."""

    limits_own_body = True
    """The bridge enforces ``PLUGHOST_MAX_BODY_BYTES`` itself; :class:`~core.limits.RequestLimits` leaves it be."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        return (Match.PARTIAL if match is Match.FULL else match), child_scope


class BridgeShortcut(BridgeMount):
    """The bridge again, first in the route table, for the paths that only the bridge can answer: those whose
    first segment no native route claims (``/version``, a console page...). Matched first, such a request
    skips the matching against every plugin router's routes, 125 us of CPU with every plugin on (FastAPI
    opens each included router and tries its routes one by one). Any other path it leaves to the table,
    whose last route is the bridge as before."""

    def __init__(self, app: ASGIApp, native_heads: frozenset[str]) -> None:
        super().__init__("/", app=app, name="wsgi-shortcut")
        self.native_heads = native_heads

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or first_segment(get_route_path(scope)) in self.native_heads:
            return Match.NONE, {}
        return Mount.matches(self, scope)


def first_segment(path: str) -> str:
    """``/api/otel/traces`` -> ``api``; ``/`` -> ``""``."""
    return path.split("/", 2)[1] if path.startswith("/") else path


def native_heads(route_claims: Iterable[RouteClaim]) -> frozenset[str] | None:
    """The first path segments of the native routes; ``None`` when one could match any first segment
    (a path parameter there, or a mount or host at the root)."""
    heads = set()
    for claim in route_claims:
        head = first_segment(claim.path)
        if "{" in head or (claim.method == "*" and head == ""):
            return None
        heads.add(head)
    return frozenset(heads)


class PlughostApp(FastAPI):
    """A FastAPI app whose whole middleware stack is wrapped by the plugin middlewares."""

    def __init__(self, *, assembly: Assembly, **kwargs: Any) -> None:
        self.assembly = assembly
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        core_settings = self.assembly.host.settings
        app: ASGIApp = RequestLimits(
            super().build_middleware_stack(),
            max_body_bytes=core_settings.max_body_bytes,
            max_json_body_bytes=core_settings.max_json_body_bytes,
        )
        for contribution in reversed(self.assembly.middlewares.order):
            settings = self.assembly.host.plugin_settings(contribution.plugin)
            try:
                app = contribution.factory(app, settings)
            except Exception as exc:
                info = self.assembly.host.plugins.infos[contribution.plugin]
                raise info.failure(
                    f"middleware factory {contribution.name!r} raised {type(exc).__name__}: {exc}"
                ) from exc
        return app

    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema, plus the error answers the core gives on every route (see :mod:`core.openapi`)."""
        return with_error_responses(super().openapi(), core_paths={"/health"})

    def route_claims(self) -> list[RouteClaim]:
        """Every route with its owner, in match order, ending with the bridge at ``/``."""
        found = list(claims(core_routes(self), CORE))
        for contribution in self.assembly.routers.order:
            found.extend(claims(contribution.router, contribution.plugin))
        found.append(RouteClaim("*", "/", f"{self.assembly.wsgi_owner} (WSGI bridge)"))
        return found


def create_app(
    settings: CoreSettings | None = None,
    *,
    given: Mapping[str, object] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> PlughostApp:
    """Build the app from installed plugins and the environment.

    ``given`` adds plugin objects directly and ``overrides`` sets plugin settings
    by plugin name (both are for tests; see :mod:`core.testing`). Raises
    :class:`~core.errors.StartupError` with an operator-facing message.
    """
    host = build_host(settings or CoreSettings(), given=given, overrides=overrides)
    return build_app(assemble(host))


def build_host(
    settings: CoreSettings,
    *,
    given: Mapping[str, object] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    strict: bool = True,
) -> Host:
    host = Host(settings, load_plugins(settings, given=given, strict=strict))
    host.validate_plugin_settings(overrides, strict=strict)
    if strict:
        host.check_environment()
    return host


def assemble(host: Host, *, strict: bool = True) -> Assembly:
    """Call every contribution hook, check the results, and resolve the orders.

    Contributions of several plugins that cannot coexist (a hint cycle, a duplicate
    name, a console URL claimed twice) are a :class:`~core.errors.ClashError` naming
    those plugins. With ``strict=False`` (``plugins list``) a plugin whose hook raises,
    or that takes part in a clash, is marked as failed and left out, and the others
    are still assembled.
    """
    while True:
        try:
            return _assemble_enabled(host, strict)
        except ClashError as clash:
            if strict:
                raise
            for name in clash.plugins:
                info = host.plugins.infos[name]
                host.plugins.mark_failed(info, info.failure(clash.cause, clash.fix))


def _assemble_enabled(host: Host, strict: bool) -> Assembly:
    routers = _contributions(host, "plughost_routers", RouterContribution, strict)
    middlewares = _contributions(host, "plughost_middlewares", MiddlewareContribution, strict)
    router_order = _resolve(routers, "router")
    check_conflicts(claim for c in router_order.order for claim in claims(c.router, c.plugin))
    middleware_order = _resolve(middlewares, "middleware")
    for ignored in (*router_order.ignored, *middleware_order.ignored):
        logger.info("ordering hint %s ignored: %r is not present", ignored, ignored.target)

    lifespans = []
    for info, result in host.plugins.call("plughost_lifespan", strict=strict, host=host):
        for manager in _as_sequence(result):
            if not isinstance(manager, AbstractAsyncContextManager):
                raise info.failure(f"plughost_lifespan returned {manager!r}, not an async context manager")
            lifespans.append((info, manager))

    wsgi_apps = host.plugins.call("plughost_wsgi_app", strict=strict, host=host)
    if len(wsgi_apps) > 1:
        raise ClashError(
            "each provides the WSGI app, and only one can be mounted",
            [info.name for info, _ in wsgi_apps],
            fix="keep one of them enabled",
        )
    for info, app in wsgi_apps:
        if not callable(app):
            raise info.failure(f"plughost_wsgi_app returned {app!r}, not a WSGI callable")
    page_order: tuple[ConsolePage, ...] = ()
    shells: Callable[[str], bool] | None = None
    if wsgi_apps:
        wsgi_owner, wsgi_app = wsgi_apps[0][0].name, wsgi_apps[0][1]
    else:
        pages = _contributions(host, "plughost_console_pages", ConsolePage, strict)
        page_order = _resolve(pages, "console page").order
        console = create_default_wsgi_app(lambda: server_info(host), page_order)
        wsgi_owner, wsgi_app, shells = CORE, console, console_shells(console)

    return Assembly(host, router_order, middleware_order, tuple(lifespans), wsgi_app, wsgi_owner, page_order, shells)


def _resolve(items: Sequence[Any], kind: str) -> Resolution[Any]:
    """:func:`resolve_order`, with an unsatisfiable order blamed on the plugins whose contributions made it."""
    try:
        return resolve_order(items, kind=kind)
    except OrderingError as error:
        plugins = [item.plugin for item in items if item.name in error.names]
        owners = ", ".join(f"{item.name!r} of plugin {item.plugin!r}" for item in items if item.name in error.names)
        raise ClashError(f"{error} [{kind}s: {owners}]", plugins, fix=error.fix) from None


def build_app(assembly: Assembly) -> PlughostApp:
    settings = assembly.host.settings
    app = PlughostApp(
        assembly=assembly,
        title="plughost",
        version=__version__,
        lifespan=_lifespan(assembly.host, assembly.lifespans, assembly.wsgi_owner),
        docs_url=None,
        redoc_url=None,
    )
    _add_core_routes(app)
    docs = add_offline_docs(app)
    for error in (SQLAlchemyError, OSError, ExceptionGroup):
        app.add_exception_handler(error, answer_database_errors)
    app.add_exception_handler(Exception, answer_server_error)
    app.add_exception_handler(RequestValidationError, answer_validation_error)
    app.add_exception_handler(405, answer_method_not_allowed)
    app.add_exception_handler(413, answer_too_large)
    check_conflicts(
        [
            *claims(core_routes(app), CORE),
            *(claim for c in assembly.routers.order for claim in claims(c.router, c.plugin)),
        ]
    )
    for contribution in assembly.routers.order:
        app.include_router(contribution.router)
    assembly.host.page_shells = PageShells(app.router.routes, docs, assembly.console_shells)
    bridge = WSGIBridge(
        assembly.wsgi_app,
        max_body_bytes=settings.max_body_bytes,
        threads=settings.wsgi_threads,
        multiprocess=settings.workers > 1,
    )
    app.router.routes.append(BridgeMount("/", app=bridge, name="wsgi"))
    heads = native_heads(app.route_claims()[:-1])
    if heads is not None:
        app.router.routes.insert(0, BridgeShortcut(bridge, heads))
    app.middleware_stack = app.build_middleware_stack()  # factories fail now, at start-up, not on a request
    return app


def core_routes(app: PlughostApp) -> list[Any]:
    """The app's own routes: everything but plugin routers and the bridge."""
    plugin_routers = {id(c.router) for c in app.assembly.routers.order}
    return [
        route
        for route in app.router.routes
        if not isinstance(route, BridgeMount) and id(getattr(route, "original_router", None)) not in plugin_routers
    ]


def server_info(host: Host) -> dict[str, Any]:
    return {
        "version": __version__,
        "plugins": {info.name: info.status for info in host.plugins.infos.values()},
    }


def _add_core_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["core"])
    async def health() -> dict[str, str]:
        """Liveness: answers as soon as the server accepts requests."""
        return {"status": "ok"}


def _contributions(host: Host, hook: str, kind: type[Any], strict: bool) -> list[Any]:
    found = []
    for info, result in host.plugins.call(hook, strict=strict, host=host):
        for contribution in _as_sequence(result):
            if not isinstance(contribution, kind):
                raise info.failure(f"{hook} returned {contribution!r}, not a {kind.__name__}")
            found.append(replace(contribution, plugin=info.name))
    return found


def _as_sequence(result: Any) -> Sequence[Any]:
    return result if isinstance(result, (list, tuple)) else [result]


def _build_route_tables(app: FastAPI) -> None:
    """FastAPI builds an included router's table of routes (each route's dependants and validators)
    the first time it matches a request against it: 10-20 ms of the event loop with every built-in
    plugin, inside the first request. Matching one request against every route at start-up builds
    them all before the first request, and they are frozen out of the cyclic GC with the rest."""
    unmatched = "/\x00plughost-start-up"  # no route matches it: every router looks at all of its routes
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": unmatched,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    for route in app.router.routes:
        route.matches(dict(scope))


UNGATED_MATCHES = "plughost_ungated_matches"
"""Where a gated route keeps its own ``matches``."""


def _gate_plugin_routers(app: FastAPI) -> None:
    """Try each plugin's router only for paths whose first segment one of its routes claims. FastAPI tries
    an included router's routes one by one, 1-3 us each (and again inside the router that answers), so a
    call to the gateway tried the assistant's routes first, and an OTLP export four plugins' routers.
    Applied once the route tables are built (:func:`_build_route_tables` must reach every route)."""
    if not isinstance(app, PlughostApp):
        return
    heads_by_router = {}
    for contribution in app.assembly.routers.order:
        heads = native_heads(claims(contribution.router, contribution.plugin))
        if heads is not None:
            heads_by_router[id(contribution.router)] = heads
    for route in app.router.routes:
        heads = heads_by_router.get(id(getattr(route, "original_router", None)))
        if heads is not None:  # gated again at a later start of the same app: around the route's own matches
            ungated = route.__dict__.setdefault(UNGATED_MATCHES, route.matches)
            route.matches = _matched_under(heads, ungated)  # type: ignore[method-assign]


def _matched_under(heads: frozenset[str], matches: Callable[[Scope], tuple[Match, Scope]]) -> Any:
    """``matches``, answering ``Match.NONE`` at once for a path whose first segment is not in ``heads``."""

    def gated(scope: Scope) -> tuple[Match, Scope]:
        if first_segment(get_route_path(scope)) not in heads:
            return Match.NONE, {}
        return matches(scope)

    return gated


def log_addresses(host: Host, wsgi_owner: str) -> None:
    """The start-up log's addresses: the console (or the WSGI app that replaces it), the API docs, and
    what each plugin says it serves (``plughost_addresses``), so a new user knows where to go."""
    base = base_url(host.settings.host, host.settings.port)
    console = "Console" if wsgi_owner == CORE else f"Web app ({wsgi_owner})"
    lines = [(console, f"{base}/"), ("API docs", f"{base}/docs")]
    for _, pairs in host.plugins.call("plughost_addresses", host=host, base_url=base):
        lines += list(pairs)
    width = max(len(what) for what, _ in lines) + 1
    for what, where in lines:
        logger.info("%s %s", f"{what}:".ljust(width), where)


def base_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets; a wildcard address as this machine's loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def _lifespan(
    host: Host, managers: Sequence[tuple[PluginInfo, AbstractAsyncContextManager[Any]]], wsgi_owner: str
) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(host.close)  # exited last, after every plugin's lifespan
            for info, manager in managers:
                try:
                    await stack.enter_async_context(manager)
                except Exception as exc:
                    raise info.failure(f"start-up failed: {type(exc).__name__}: {exc}") from exc
            _build_route_tables(app)
            _gate_plugin_routers(app)
            log_addresses(host, wsgi_owner)
            startup.started()
            bulk.start_threads()
            # Worker threads (decoding, analyses, sqlite) hold the GIL for up to the switch interval
            # each time the loop wants it back; at CPython's 5 ms, one /health answer under load
            # waited 8-11 ms at p99, at 1 ms 2-3 ms (benchmarks/run stall).
            stack.callback(sys.setswitchinterval, sys.getswitchinterval())
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
            yield

    return lifespan
