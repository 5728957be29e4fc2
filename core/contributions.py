"""Typed values that plugin hooks return to the core.

A hook never touches the app: it describes what it contributes and the factory
assembles everything. ``before``/``after``/``requires`` name other contributions
of the same kind (middleware hints name middlewares, router hints name routers);
by convention a plugin's main contribution carries the plugin's own name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from fastapi import APIRouter
from flask import Blueprint
from starlette.types import ASGIApp

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

MiddlewareFactory = Callable[[ASGIApp, Any], ASGIApp]
"""``(app, settings) -> ASGIApp``: wraps ``app``; ``settings`` is the owning
plugin's validated settings model, or ``None`` when it declares none."""

Names = tuple[str, ...]


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"{what} name {name!r} must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter"
        )
    return name


@dataclass(frozen=True)
class Contribution:
    """What every contribution has: a name and ordering hints (keyword-only)."""

    name: str
    _: KW_ONLY
    before: Names = ()
    after: Names = ()
    requires: Names = ()
    plugin: str = field(default="", compare=False)
    """The owning plugin's name: filled in by the core, never by the plugin."""

    def __post_init__(self) -> None:
        check_name(self.name, "contribution")
        for hint in ("before", "after", "requires"):
            value: str | Iterable[str] = getattr(self, hint)
            object.__setattr__(self, hint, (value,) if isinstance(value, str) else tuple(value))


@dataclass(frozen=True)
class RouterContribution(Contribution):
    """An ``APIRouter`` to include; ``before`` means earlier in first-match order."""

    router: APIRouter

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.router, APIRouter):
            raise TypeError(f"router contribution {self.name!r} needs a fastapi.APIRouter, got {type(self.router).__name__}")


@dataclass(frozen=True)
class MiddlewareContribution(Contribution):
    """A pure ASGI middleware factory; "A before B" means A sees the request first (A wraps B)."""

    factory: MiddlewareFactory

    def __post_init__(self) -> None:
        super().__post_init__()
        if not callable(self.factory):
            raise TypeError(f"middleware contribution {self.name!r} needs a callable factory (app, settings) -> ASGIApp")



@dataclass(frozen=True)
class ConsolePage(Contribution):
    """A page of the web console: a Flask blueprint and its navigation entry.

    ``path`` is where the navigation link points (for example ``/traces``); the
    blueprint registers its own URL rules. ``before``/``after`` name other pages
    and order the navigation bar (``before`` means further left).
    """

    blueprint: Blueprint
    title: str
    path: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.blueprint, Blueprint):
            raise TypeError(f"console page {self.name!r} needs a flask.Blueprint, got {type(self.blueprint).__name__}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError(f"console page {self.name!r} path must start with '/', got {self.path!r}")
