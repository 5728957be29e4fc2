"""security: allowed hosts (DNS rebinding), cross-origin write protection, CORS, an optional token,
and security headers on every response. Outermost of the middlewares."""

from __future__ import annotations

from functools import partial
from typing import Any

from core import MiddlewareContribution, hookimpl

from .middleware import SecurityMiddleware
from .settings import Settings


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_middlewares(host: Any) -> MiddlewareContribution:
    factory = partial(SecurityMiddleware, page_shell=host.is_page_shell)
    return MiddlewareContribution("security", factory, before=("workspace", "timing"))
