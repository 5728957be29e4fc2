"""``python -m core keys ...`` and ``python -m core users ...``: manage accounts in the shared database, from the
host the server runs on (how the first admin key is made)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from core.access import EVERY_WORKSPACE, ROLES, Role
from core.cli import load_host, startup_errors
from core.database import migrate

from .counters import Counters, counters_for
from .management import Grant, KeyLimits, NewKey, NewUser, add_key, add_user
from .store import AccountStore, Kind, NameTaken

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


def _with_store(work: Callable[[AccountStore], Awaitable[T]]) -> T:
    """Run ``work`` on the server's account store (migrated first), then release the database."""
    host = load_host()
    settings = host.plugin_settings("security") if host.is_enabled("security") else None
    if getattr(settings, "auth", None) != "users":
        click.echo("note: accounts are off until the server runs with PLUGHOST_SECURITY_AUTH=users", err=True)

    async def run() -> T:
        try:
            await migrate(host.database, MIGRATIONS, "security")
            return await work(AccountStore(host.database))
        finally:
            await host.close()

    return asyncio.run(run())


def _with_counters(work: Callable[[Counters], Awaitable[None]]) -> None:
    """Run ``work`` on the gateway key counters the server uses (Redis or the database)."""
    host = load_host()

    async def run() -> None:
        counters = counters_for(host.settings.redis_url, host.database)
        try:
            await migrate(host.database, MIGRATIONS, "security")
            await work(counters)
        finally:
            await counters.close()
            await host.close()

    asyncio.run(run())


def _checked(model: type[T], **values: Any) -> T:
    try:
        return model(**values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors())
        raise click.ClickException(problems) from None


def _added(work: Callable[[AccountStore], Awaitable[T]]) -> T:
    try:
        return _with_store(work)
    except NameTaken as error:
        raise click.ClickException(str(error)) from None


role_option = click.option("--role", type=click.Choice(ROLES), required=True, help="The role it is granted.")
workspace_option = click.option(
    "--workspace", help="The one workspace it belongs to. [default: every workspace; admin there = server admin]"
)


@click.group("keys")
def keys() -> None:
    """API keys for programs (PLUGHOST_SECURITY_AUTH=users)."""


@keys.command("add")
@click.argument("name")
@role_option
@workspace_option
@click.option("--rpm", type=int, help="Gateway calls per minute.")
@click.option("--tpm", type=int, help="Gateway tokens per minute.")
@click.option("--budget-usd", type=float, help="Gateway spend per budget period, in US dollars.")
@click.option("--budget-period", type=click.Choice(["day", "week", "month"]), default="month", show_default=True)
@click.option("--endpoint", "endpoints", multiple=True, help="A gateway endpoint it may call (repeat); default all.")
@startup_errors
def add_key_command(name: str, role: str, workspace: str | None, endpoints: tuple[str, ...], **limits: Any) -> None:
    """Add a key and print it: it is shown this once (only its hash is stored)."""
    limit_values = _checked(KeyLimits, endpoints=list(endpoints) or None, **limits)
    new = _checked(NewKey, name=name, role=role, workspace=workspace, limits=limit_values)
    _entry, key = _added(lambda store: add_key(store, new))
    click.echo(key)


@click.group("users")
def users() -> None:
    """Console users (PLUGHOST_SECURITY_AUTH=users)."""


@users.command("add")
@click.argument("name")
@role_option
@workspace_option
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
@startup_errors
def add_user_command(name: str, role: str, workspace: str | None, password_stdin: bool) -> None:
    """Add a user who signs in to the console at /login."""
    password = sys.stdin.readline().rstrip("\r\n")
    new = _checked(NewUser, name=name, role=role, workspace=workspace, password=password)
    _added(lambda store: add_user(store, new))
    click.echo(f"user {name!r} added")


def _management_commands(group: click.Group, kind: Kind, plural: str) -> None:
    @group.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @startup_errors
    def listing(as_json: bool) -> None:
        """Every one, with roles and last use (never a secret)."""
        entries = _with_store(lambda store: store.listing(kind))
        if as_json:
            click.echo(json.dumps({plural: entries}, indent=2))
            return
        for entry in entries:
            roles = ", ".join(f"{role} in {'every workspace' if w == '*' else w}" for w, role in entry["roles"].items())
            state = " (disabled)" if entry["disabled"] else ""
            prefix = f" {entry['prefix']}…" if "prefix" in entry else ""
            click.echo(f"{entry['name']}{prefix}: {roles}{state}")
        if not entries:
            click.echo(f"no {plural}")

    def change(name: str, action: Callable[[AccountStore], Awaitable[bool]], done: str) -> None:
        if not _with_store(action):
            raise click.ClickException(f"no {kind} {name!r}")
        click.echo(f"{kind} {name!r} {done}")

    @group.command("disable")
    @click.argument("name")
    @startup_errors
    def disable(name: str) -> None:
        """Refuse it from now on (every process within PLUGHOST_SECURITY_CREDENTIAL_CACHE_SECONDS)."""
        change(name, lambda store: store.set_disabled(kind, name, True), "disabled")

    @group.command("enable")
    @click.argument("name")
    @startup_errors
    def enable(name: str) -> None:
        """Accept it again."""
        change(name, lambda store: store.set_disabled(kind, name, False), "enabled")

    @group.command("grant")
    @click.argument("name")
    @role_option
    @workspace_option
    @startup_errors
    def grant(name: str, role: Role, workspace: str | None) -> None:
        """Give it ROLE in a workspace (replacing its role there)."""
        where = _checked(Grant, name=name, role=role, workspace=workspace)
        change(name, lambda store: store.set_role(kind, name, where.workspace or EVERY_WORKSPACE, role), "granted")

    @group.command("revoke")
    @click.argument("name")
    @workspace_option
    @startup_errors
    def revoke(name: str, workspace: str | None) -> None:
        """Take away its role in a workspace."""
        where = _checked(Grant, name=name, role="viewer", workspace=workspace)
        change(name, lambda store: store.set_role(kind, name, where.workspace or EVERY_WORKSPACE, None), "revoked")

    @group.command("delete")
    @click.argument("name")
    @startup_errors
    def delete(name: str) -> None:
        """Delete it for good."""
        change(name, lambda store: store.delete(kind, name), "deleted")
        if kind == "key":
            _with_counters(lambda counters: counters.forget(name))


_management_commands(keys, "key", "keys")
_management_commands(users, "user", "users")
