"""timing: ``Server-Timing`` on every response; duration and overhead headers where upstream time was reported."""

from __future__ import annotations

from typing import Any

from core import MiddlewareContribution, hookimpl

from .middleware import TimingMiddleware


@hookimpl
def plughost_middlewares(host: Any) -> MiddlewareContribution:
    return MiddlewareContribution("timing", TimingMiddleware, after=("workspace",))
