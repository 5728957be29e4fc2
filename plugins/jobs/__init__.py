"""jobs: background jobs in worker subprocesses, queued in the database, with timeouts, cancel, retries and recovery.

Each hook imports what it serves when it is called: this package is imported by every job fork server
(``python -m plugins.jobs.forkserver``) and under every job module of this plugin, which need no web
framework (a fork server starts on about half a second of CPU instead of 1.3 s).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from core import hookimpl

from . import hookspecs

if TYPE_CHECKING:
    import click

    from core import ConsolePage, Host, RouterContribution

    from .client import Client
    from .service import Jobs
    from .settings import Settings


def _jobs(host: Host) -> Jobs:
    from .service import Jobs

    return host.service("jobs", lambda: Jobs.for_host(host))


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    from .settings import Settings

    return Settings


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    from core import RouterContribution

    from .router import create_router

    return RouterContribution("jobs", create_router(_jobs(host)))


@hookimpl
def plughost_console_pages(host: Any) -> ConsolePage:
    from core import ConsolePage

    from .ui import pages

    return ConsolePage("jobs", pages, "Jobs", "/jobs", after=("otel",))


@hookimpl
def plughost_lifespan(host: Any) -> contextlib.AbstractAsyncContextManager[None]:
    return _jobs(host).running()


@hookimpl(optionalhook=True)
def plughost_workspaces(host: Any) -> Awaitable[list[str]]:
    """The workspaces that have jobs (for the workspace plugin's ``GET /api/workspaces``)."""
    from core.database import distinct_workspaces

    from .store import jobs as job_rows

    return distinct_workspaces(host.database, job_rows)


@hookimpl
def plughost_commands(cli: click.Group) -> click.Command:
    from .cli import jobs

    return jobs


@hookimpl
def plughost_jobs_client(host: Any) -> Client:
    """Other plugins' :class:`~plugins.jobs.hookspecs.JobsClient`: this app's jobs, in the current workspace."""
    from .client import Client

    return Client(_jobs(host))
