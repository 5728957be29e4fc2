"""workspace: the request's workspace from the ``X-Plughost-Workspace`` header, for stores to scope data by,
and ``GET /api/workspaces``, the workspaces that hold data (``plughost_workspaces``)."""

from __future__ import annotations

from typing import Any

from core import MiddlewareContribution, RouterContribution, hookimpl

from . import hookspecs
from .middleware import WorkspaceMiddleware
from .router import create_router


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_middlewares(host: Any) -> MiddlewareContribution:
    return MiddlewareContribution("workspace", WorkspaceMiddleware, after=("security",), before=("timing",))


@hookimpl
def plughost_routers(host: Any) -> RouterContribution:
    return RouterContribution("workspace", create_router(host))
