"""The plugin contract: every hook the core calls, when it calls it, and what it returns.

Implement a hook with ``@core.hookimpl`` on a function of the same name in the
module your ``plughost.plugins`` entry point names. Hooks describe contributions
and never touch the app; the factory assembles everything.

The core calls each plugin's implementation on its own, in plugin-name order, so
that every contribution and every error carries the plugin's name. Order is set
by ``before``/``after`` hints on contributions, never by ``tryfirst``/``trylast``
or hook wrappers, which the core rejects on these hooks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # annotations only: a plugin module that imports ``hookimpl`` loads no web framework
    import click
    from pydantic import BaseModel

    from .access import IngestAuthorizer
    from .contributions import ConsolePage, MiddlewareContribution, RouterContribution
    from .host import Host

PROJECT_NAME = "plughost"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

SpanExporter = Callable[..., Awaitable[None]]
"""``await export(request, workspace=..., project=...)``: store the spans of an OTLP
``ExportTraceServiceRequest`` protobuf in the trace store, under that workspace and project.
Returns once they are stored; raises when they cannot be."""


@hookspec
def plughost_addhooks(plugin_manager: pluggy.PluginManager) -> None:
    """Add hook specifications that other plugins may implement.

    Called once, right after every enabled plugin is registered and before any
    other hook, so a plugin can offer hooks of its own (the jobs plugin's
    ``plughost_job_types`` is one). Return nothing.

    Example::

        @hookimpl
        def plughost_addhooks(plugin_manager):
            plugin_manager.add_hookspecs(my_plugin.hookspecs)
    """


@hookspec
def plughost_settings(host: Host) -> type[BaseModel] | None:
    """Declare the plugin's settings as a pydantic model class.

    Called once at start-up, before any other contribution hook. The core fills
    the model from the environment, ``PLUGHOST_<PLUGIN>_<FIELD>`` (plugin name in
    upper case, ``-`` as ``_``), validates it, and stops start-up with the
    offending variable named when a value is invalid or a variable names no
    field. List fields take JSON or comma-separated values. The validated
    instance is then available as ``host.plugin_settings(name)`` and is passed to
    the plugin's middleware factories. Return the model class, or ``None``.

    Example::

        class Settings(BaseModel):
            max_items: int = 100          # PLUGHOST_MYPLUGIN_MAX_ITEMS

        @hookimpl
        def plughost_settings(host):
            return Settings
    """


@hookspec
def plughost_routers(host: Host) -> RouterContribution | Sequence[RouterContribution] | None:
    """Contribute routers to include, with ordering hints.

    Called once per app build, after settings are validated. Routers are
    included in the resolved first-match order (``before`` = matched earlier),
    always ahead of the WSGI bridge at ``/``. A method and path claimed by two
    contributions stops start-up naming both. Return one contribution, a list of
    them, or ``None``.

    Example::

        router = APIRouter()

        @router.get("/api/hello")
        async def hello() -> dict[str, str]:
            return {"hello": "world"}

        @hookimpl
        def plughost_routers(host):
            return RouterContribution("hello", router)
    """


@hookspec
def plughost_middlewares(host: Host) -> MiddlewareContribution | Sequence[MiddlewareContribution] | None:
    """Contribute pure ASGI middlewares, with ordering hints.

    Called once per app build, after settings are validated. Each factory is
    called as ``factory(app, settings)`` and returns the wrapping ASGI app. "A
    before B" means A sees the request first. Plugin middlewares wrap
    everything: every router, the WSGI bridge, and the core's error handling,
    so their headers reach error responses too. Return one contribution, a list
    of them, or ``None``.

    Example::

        def add_header(app, settings):
            async def middleware(scope, receive, send):
                async def send_with_header(message):
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message["headers"], (b"x-hello", b"1")]
                    await send(message)
                await app(scope, receive, send_with_header if scope["type"] == "http" else send)
            return middleware

        @hookimpl
        def plughost_middlewares(host):
            return MiddlewareContribution("hello", add_header, after=["security"])
    """


@hookspec
def plughost_lifespan(
    host: Host,
) -> AbstractAsyncContextManager[Any] | Sequence[AbstractAsyncContextManager[Any]] | None:
    """Contribute async context managers run around the server's life.

    Called once per app build. The core enters them at start-up, in plugin-name
    order, before the first request is served, and exits them in reverse order
    at shutdown. An exception on entry stops start-up naming the plugin. Use
    them to open stores and start workers. Return one context manager, a list of
    them, or ``None``.

    Example::

        @contextlib.asynccontextmanager
        async def open_store():
            store = await Store.open(host.settings.data_dir / "my.db")
            try:
                yield
            finally:
                await store.close()

        @hookimpl
        def plughost_lifespan(host):
            return open_store()
    """


@hookspec
def plughost_addresses(host: Host, base_url: str) -> Sequence[tuple[str, str]] | None:
    """Say what the plugin serves, and where, for the start-up log.

    Called once per app, when start-up is done (every plugin's lifespan entered), with
    ``base_url``, the HTTP server's address (``http://127.0.0.1:5000``, from the ``host``
    and ``port`` settings). The core logs the console's address, then each returned
    ``(what, where)`` pair on a line of its own. Return pairs such as
    ``[("OTLP/gRPC", "127.0.0.1:4317")]``, or ``None``.
    """


@hookspec
def plughost_console_pages(host: Host) -> ConsolePage | Sequence[ConsolePage] | None:
    """Contribute pages to the web console (the default WSGI app at ``/``).

    Called once per app build, after the routers and middlewares. Each
    :class:`~core.contributions.ConsolePage` carries a Flask blueprint (its
    templates extend ``console/layout.html``; its scripts are files under the
    blueprint's static folder, since console pages forbid inline script) and a
    navigation entry (``title`` and ``path``, or neither for no entry), ordered
    by its ``before``/``after`` hints like the other contributions. Page scripts
    call the API with ``plughost.api(path, options)`` from ``console.js``, which
    adds the workspace and the token. A page is a shell that holds no data: a GET
    of any of the blueprint's URL rules is served without the token (see
    :meth:`core.Host.is_page_shell`), so never render data into its templates or
    answer JSON from it. ``scripts=(url, ...)`` (and ``styles``) are same-origin
    paths the shell loads on every console page, after ``console.js`` and before
    the page's own scripts: the slot through which a plugin adds to another
    plugin's page, by listening for the ``plughost:*`` events that page
    dispatches on ``document`` (for example ``plughost:trace-view``). Pages are
    not shown when a plugin replaces the console with ``plughost_wsgi_app``.
    Return one page, a list of them, or ``None``.

    Example::

        pages = Blueprint("hello", __name__, template_folder="templates")

        @pages.get("/hello")
        def hello():
            return render_template("hello/index.html")

        @hookimpl
        def plughost_console_pages(host):
            return ConsolePage("hello", pages, "Hello", "/hello")

    A scripts-only contribution (no navigation entry)::

        panel = Blueprint("extra", __name__, static_folder="static", static_url_path="/extra/static")

        @hookimpl
        def plughost_console_pages(host):
            return ConsolePage("extra", panel, scripts=("/extra/static/extra/panel.js",))
    """


@hookspec(firstresult=True)
def plughost_wsgi_app(host: Host) -> Any:
    """Provide the WSGI application mounted last, at ``/``.

    Called once per app build. The app answers every path that no router
    claims. When no plugin returns one, the core's console (pages from
    ``plughost_console_pages``, ``/version``, ``/server-info``) is mounted. Two plugins returning an app
    stops start-up naming both. Return a PEP 3333 callable, or ``None``.

    Example::

        @hookimpl
        def plughost_wsgi_app(host):
            from legacy.server import app
            return app
    """


@hookspec
def plughost_commands(cli: click.Group) -> click.Command | Sequence[click.Command] | None:
    """Contribute extra ``python -m core`` commands.

    Called when the CLI starts, with the root command group. A plugin that
    fails to load adds no commands, and the CLI still runs so that
    ``plugins list`` can say what is wrong. A command whose name is taken stops
    the CLI naming both owners. Return one click command (or group), a list of
    them, or ``None``. A command that needs the plugins (outside the server)
    gets them with :func:`core.cli.load_host`; decorate it with
    :func:`core.cli.startup_errors` so a broken plugin is a one-line error.

    Example::

        @click.command("hello")
        def hello() -> None:
            click.echo("hello")

        @hookimpl
        def plughost_commands(cli):
            return hello
    """


@hookspec(firstresult=True)
def plughost_span_exporter(host: Host) -> SpanExporter | None:
    """Provide the function that records spans in the server's own trace store.

    Called by plugins that produce traces of their own (the gateway records each LLM
    call), once per app build; the first plugin to return an exporter wins (the otel
    plugin provides one). The exporter is ``await export(request, workspace=...,
    project="default")`` where ``request`` is an OTLP ``ExportTraceServiceRequest``
    protobuf; it returns once the spans are stored and raises when they cannot be.
    Spans the store refuses (bad ids, for example) are left out, as on ``/v1/traces``.
    Callers keep it off their request path: queue spans and export them in batches
    from a background task, so that a slow or failing store never delays a response.
    Return a ``SpanExporter``, or ``None``.

    Example::

        exporter = host.plugins.manager.hook.plughost_span_exporter(host=host)
        if exporter is not None:
            await exporter(request, workspace="default", project="default")
    """


@hookspec(firstresult=True)
def plughost_ingest_authorizer(host: Host) -> IngestAuthorizer | None:
    """Provide the check a receiver outside the HTTP stack (the otel plugin's OTLP/gRPC) runs before it stores.

    Called once per app build by such a receiver; the first plugin to return one wins (the security
    plugin does, whether it checks one token or accounts). The authorizer is ``await authorize(metadata,
    workspace)``: ``metadata`` the request's metadata with lower-case keys, ``workspace`` the one it
    names; it returns the workspace to store into (a key of one workspace stores into its own, whatever
    the metadata says) or raises :class:`core.access.AccessRefused` (401: no or wrong credentials, 403:
    a role that may not write). Without an authorizer, everything is accepted as named. Over HTTP the
    same check is the authenticating middleware's. Return an ``IngestAuthorizer``, or ``None``.

    Example::

        authorize = host.plugins.manager.hook.plughost_ingest_authorizer(host=host)
        if authorize is not None:
            workspace = await authorize(metadata, workspace)
    """


@hookspec(firstresult=True)
def plughost_authentication(host: Host) -> str | None:
    """Say how the server authenticates the requests it answers.

    Called at app build by plugins that may serve remote clients only when every request
    carries credentials (the assistant, when ``PLUGHOST_ASSISTANT_ALLOW_REMOTE`` is set),
    through :func:`core.access.authentication`. Return a few words that name the method
    ("the bearer token (PLUGHOST_SECURITY_TOKEN)") when your plugin refuses every request
    without valid credentials, its exempt paths and data-free pages aside; return ``None``
    when it lets requests through unauthenticated. The first answer that is not ``None``
    wins (the security plugin gives one).

    Example::

        if settings.allow_remote and authentication(host) is None:
            raise ValueError("remote access needs authenticated requests")
    """
