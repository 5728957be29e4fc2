"""Flatten routers into (method, path) claims, find claims that two owners make, and answer 405s with the
allowed methods."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute, compile_path

from .errors import ClashError

CORE = "core"
"""The owner of the app's own routes (``/health``, the docs) in claims and messages."""


@dataclass(frozen=True)
class RouteClaim:
    method: str
    """An HTTP method, ``WEBSOCKET``, or ``*`` for a mount (every method under its path)."""
    path: str
    owner: str


def claims(router: APIRouter | Iterable[BaseRoute], owner: str, prefix: str = "") -> Iterator[RouteClaim]:
    """Every (method, path) ``router`` answers, with the prefixes of included routers applied.

    FastAPI keeps an included router as a wrapper route rather than copying its
    routes, so wrappers are opened and their include prefix applied.
    """
    routes = router.routes if isinstance(router, APIRouter) else router
    for route in routes:
        original = getattr(route, "original_router", None)
        if isinstance(original, APIRouter):  # fastapi's wrapper around an included router
            context = getattr(route, "include_context", None)
            yield from claims(original, owner, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                yield RouteClaim(method, prefix + route.path, owner)
        elif isinstance(route, WebSocketRoute):
            yield RouteClaim("WEBSOCKET", prefix + route.path, owner)
        elif isinstance(route, (Mount, Host)):
            yield RouteClaim("*", prefix + (getattr(route, "path", "") or "/"), owner)


def check_conflicts(all_claims: Iterable[RouteClaim]) -> None:
    """Raise a :class:`ClashError` naming both owners when one method and path is claimed twice
    (the core is named in the message, but only plugins can be disabled)."""
    seen: dict[tuple[str, str], RouteClaim] = {}
    clashes = []
    owners: set[str] = set()
    for claim in all_claims:
        key = (claim.method, claim.path)
        first = seen.setdefault(key, claim)
        if first is not claim and first.owner != claim.owner:
            clashes.append(f"{claim.method} {claim.path} is claimed by both {first.owner!r} and {claim.owner!r}")
            owners.update({first.owner, claim.owner})
    if clashes:
        raise ClashError("route conflict: " + "; ".join(clashes), owners - {CORE}, fix="change one of the paths")


PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(route_claims: Iterable[RouteClaim], path: str) -> list[str]:
    """The methods answered at ``path`` by its most specific path templates (those with the fewest
    parameters), across plugins, for a 405's ``Allow`` header.

    Starlette's router lets the first route whose path matches answer the 405, so its ``Allow``
    would name that route's methods only, not those of the routes (often other plugins' or other
    functions') that share the path. A template with a parameter that also matches (``/api/jobs/{id}``
    at ``/api/jobs/schedules``) is not this path's: its methods are not advertised here.
    """
    matching = [claim for claim in route_claims if claim.method in PROBED_METHODS and _template(claim.path).match(path)]
    fewest = min((claim.path.count("{") for claim in matching), default=0)
    methods = {claim.method for claim in matching if claim.path.count("{") == fewest}
    return [method for method in PROBED_METHODS if method in methods]


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


async def answer_method_not_allowed(request: Request, error: Exception) -> JSONResponse:
    """The app's 405 handler: ``Allow`` lists the methods of every route at the path."""
    allow = ", ".join(allowed_methods(request.app.route_claims(), request.url.path))
    return JSONResponse(
        {"detail": getattr(error, "detail", "Method Not Allowed")}, status_code=405, headers={"allow": allow}
    )
