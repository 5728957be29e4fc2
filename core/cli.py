"""``python -m core``: serve, and inspect plugins, their order and the routes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from . import startup
from .errors import StartupError
from .factory import Assembly, assemble, build_app, build_host
from .host import Host
from .plugins import PluginInfo, installed_entry_points, load_plugins
from .scaffold import new_plugin
from .settings import ENV_PREFIX, CoreSettings


def load_settings() -> CoreSettings:
    try:
        return CoreSettings()
    except ValidationError as error:
        problems = "; ".join(f"{ENV_PREFIX}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        raise click.ClickException(f"invalid settings: {problems}") from None


def load_host() -> Host:
    """The host as ``serve`` builds it: settings from the environment, plugins loaded, their settings validated.

    For plugin commands (``plughost_commands``) that work outside the server, such as a job worker.
    """
    return build_host(load_settings())


def startup_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a StartupError into a one-message CLI failure (exit status 1), without a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except StartupError as error:
            raise click.ClickException(str(error)) from None

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _export(**values: Any) -> None:
    """Set ``PLUGHOST_*`` variables from options given, so uvicorn's workers see them too."""
    for name, value in values.items():
        if value is not None:
            os.environ[f"{ENV_PREFIX}{name.upper()}"] = str(value)


@click.group()
@click.version_option(package_name="plughost")
@click.pass_context
def cli(context: click.Context) -> None:
    """plughost: a plugin-driven web server."""
    if context.invoked_subcommand != "serve":  # serve's lifespan turns it on once the app has started
        startup.resume_collector()


@cli.command()
@click.option("--host", help="Address to bind. [default: 127.0.0.1, this machine only]")
@click.option("--port", type=int, help="Port to bind. [default: 5000]")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes. [default: 1]")
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    help="Event loop. [default: auto, uvloop when installed]",
)
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]))
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Where embedded data lives. [default: ./plughost-data]"
)
@click.option("--plugins", help="Comma-separated allow-list of plugins (PLUGHOST_PLUGINS). [default: all installed]")
@click.option("--disable-plugins", help="Comma-separated plugins to leave out (PLUGHOST_DISABLE_PLUGINS).")
@startup_errors
def serve(reload: bool, **options: Any) -> None:
    """Run the server (uvicorn)."""
    from .server import serve as run

    _export(**options)
    run(load_settings(), reload=reload)


@cli.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_plugins(as_json: bool) -> None:
    """Every installed plugin with its status, hooks and contributions (console pages in navigation order).
    Works when plugins are broken."""
    host = build_host(load_settings(), strict=False)
    assembly, problem = _try_assemble(host)
    try:
        host.check_environment()
    except StartupError as error:
        problem = "\n".join(filter(None, (problem, str(error))))
    rows = [_describe(info, host, assembly) for info in host.plugins.infos.values()]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "assembly_error": problem}, indent=2))
        return
    for row in rows:
        origin = f"{row['distribution']} {row['version']}".strip() or row["source"]
        click.echo(f"{row['name']:<16} {row['status']:<9} {origin}")
        if row["hooks"]:
            click.echo(f"    hooks: {', '.join(row['hooks'])}")
        for contribution in row["contributions"]:
            page = f": {contribution['title']} at {contribution['path']}" if "path" in contribution else ""
            click.echo(f"    {contribution['kind']} {contribution['name']}{page} (position {contribution['position']})")
        if row["error"]:
            click.echo("    " + row["error"].replace("\n", "\n    "))
    if problem:
        click.echo(f"\nThe server would not start: {problem}")
    if not rows:
        click.echo("no plugins installed")


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to write plughost-NAME/. [default: the current directory]",
)
@startup_errors
def new(name: str, directory: Path) -> None:
    """Write a new plugin distribution, plughost-NAME, ready to pip install and test."""
    installed = {entry_point.name for entry_point in installed_entry_points()}
    target = new_plugin(name, directory, installed)
    click.echo(f"wrote {target}\n  pip install -e '{target}[test]' && pytest {target}")


@plugins.command("order")
@click.option("--explain", is_flag=True, help="Show which hint placed each contribution.")
@startup_errors
def order(explain: bool) -> None:
    """The resolved middleware order (outermost first) and router order (first match first)."""
    assembly = assemble(load_host())
    owners = assembly.owners
    for title, resolution in (
        ("middlewares (outermost first)", assembly.middlewares),
        ("routers (first match first; the WSGI bridge at / comes after them all)", assembly.routers),
    ):
        click.echo(title + ":")
        if explain:
            lines = resolution.explain({name: f"plugin {owner}" for name, owner in owners.items()})
        else:
            lines = [f"{position:>3}. {item.name}" for position, item in enumerate(resolution.order, start=1)]
        click.echo("\n".join(lines) if lines else "    none")


@cli.command()
@startup_errors
def routes() -> None:
    """Every route with its owner, in match order, ending with the WSGI bridge at /."""
    app = build_app(assemble(load_host()))
    for claim in app.route_claims():
        click.echo(f"{claim.method:<9} {claim.path:<40} {claim.owner}")


def _try_assemble(host: Host) -> tuple[Assembly | None, str | None]:
    try:
        return assemble(host, strict=False), None
    except StartupError as error:
        return None, str(error)


def _describe(info: PluginInfo, host: Host, assembly: Assembly | None) -> dict[str, Any]:
    hooks = sorted(c.name for c in host.plugins.manager.get_hookcallers(info.plugin) or []) if info.plugin else []
    contributions = []
    if assembly is not None:
        for kind, resolution in (("middleware", assembly.middlewares), ("router", assembly.routers)):
            for position, item in enumerate(resolution.order, start=1):
                if item.plugin == info.name:
                    contributions.append({"kind": kind, "name": item.name, "position": position})
        for position, page in enumerate(assembly.pages, start=1):
            if page.plugin == info.name:
                entry: dict[str, Any] = {"kind": "console page", "name": page.name, "position": position}
                if page.navigation is not None:  # a scripts-only contribution has no navigation entry
                    entry.update(title=page.title, path=page.path)
                contributions.append(entry)
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "source": info.source,
        "status": info.status,
        "error": info.error,
        "hooks": hooks,
        "contributions": contributions,
    }


def build_cli() -> click.Group:
    """The root group with the plugins' own commands added.

    Plugins that fail to import add none. Plugin settings are not validated
    here: a command that needs them calls :func:`load_host`, which reports a
    bad setting as a start-up error naming the plugin.
    """
    try:
        plugins = load_plugins(CoreSettings(), strict=False)
    except (StartupError, ValidationError):
        return cli  # the built-in commands will report the problem
    owners: dict[str, str] = {name: "plughost" for name in cli.commands}
    for info, result in plugins.call("plughost_commands", strict=False, cli=cli):
        for command in result if isinstance(result, (list, tuple)) else [result]:
            if not isinstance(command, click.Command) or not command.name:
                raise click.ClickException(
                    f"plugin {info.name!r}: plughost_commands returned {command!r}, not a named click command"
                )
            if command.name in owners and cli.commands.get(command.name) is not command:
                raise click.ClickException(
                    f"command {command.name!r} is offered by both {owners[command.name]!r} and plugin {info.name!r}"
                )
            owners[command.name] = f"plugin {info.name}"
            cli.add_command(command)
    return cli


def main() -> None:
    build_cli()(prog_name="python -m core")
