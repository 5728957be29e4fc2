"""Flatten routers into (method, path) claims and find claims that two owners make."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute

from .errors import StartupError


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
    """Raise naming both owners when one method and path is claimed twice."""
    seen: dict[tuple[str, str], RouteClaim] = {}
    clashes = []
    for claim in all_claims:
        key = (claim.method, claim.path)
        first = seen.setdefault(key, claim)
        if first is not claim and first.owner != claim.owner:
            clashes.append(f"{claim.method} {claim.path} is claimed by both {first.owner!r} and {claim.owner!r}")
    if clashes:
        raise StartupError("route conflict: " + "; ".join(clashes) + ". Change a path, or disable one of the plugins.")
