"""jobs: background jobs in worker subprocesses, queued in the database, with timeouts, cancel, retries and recovery."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import Any

import click

from core import ConsolePage, Host, RouterContribution, hookimpl
from core.database import distinct_workspaces

from . import hookspecs
from .cli import jobs
from .client import Client
from .router import create_router
from .service import Jobs
from .settings import Settings
from .store import jobs as job_rows
from .ui import pages


def _jobs(host: Host) -> Jobs:
    return host.service("jobs", lambda: Jobs.for_host(host))


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    return RouterContribution("jobs", create_router(_jobs(host)))


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage:
    return ConsolePage("jobs", pages, "Jobs", "/jobs", after=("otel",))


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    return _jobs(host).running()


@hookimpl(optionalhook=True)
def plughost_workspaces(host: Any) -> Awaitable[list[str]]:
    """The workspaces that have jobs (for the workspace plugin's ``GET /api/workspaces``)."""
    return distinct_workspaces(host.database, job_rows)


@hookimpl
def plughost_commands(cli: click.Group) -> click.Command:
    return jobs


@hookimpl
def plughost_jobs_client(host: Any) -> Client:
    """Other plugins' :class:`~plugins.jobs.hookspecs.JobsClient`: this app's jobs, in the current workspace."""
    return Client(_jobs(host))
