"""workspace: the request's workspace from the ``X-Plughost-Workspace`` header, for stores to scope data by."""

from __future__ import annotations

from typing import Any

from core import MiddlewareContribution, hookimpl

from .middleware import WorkspaceMiddleware


@hookimpl
def plughost_middlewares(host: Any) -> MiddlewareContribution:
    return MiddlewareContribution("workspace", WorkspaceMiddleware, after=("security",), before=("timing",))
