"""security: allowed hosts (DNS rebinding), cross-origin write protection, CORS, an optional token,
and security headers on every response. Outermost of the middlewares."""

from __future__ import annotations

from typing import Any

from core import MiddlewareContribution, hookimpl

from .middleware import SecurityMiddleware
from .settings import Settings


@hookimpl
def plughost_settings(host: Any) -> type[Settings]:
    return Settings


@hookimpl
def plughost_middlewares(host: Any) -> MiddlewareContribution:
    return MiddlewareContribution("security", SecurityMiddleware, before=["workspace", "timing"])
