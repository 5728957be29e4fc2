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
from werkzeug.exceptions import NotFound

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
            raise TypeError(
                f"router contribution {self.name!r} needs a fastapi.APIRouter, got {type(self.router).__name__}"
            )


@dataclass(frozen=True)
class MiddlewareContribution(Contribution):
    """A pure ASGI middleware factory; "A before B" means A sees the request first (A wraps B)."""

    factory: MiddlewareFactory

    def __post_init__(self) -> None:
        super().__post_init__()
        if not callable(self.factory):
            raise TypeError(
                f"middleware contribution {self.name!r} needs a callable factory (app, settings) -> ASGIApp"
            )


@dataclass(frozen=True)
class ConsolePage(Contribution):
    """A contribution to the web console: a Flask blueprint, its navigation entry, and shell assets.

    ``path`` is where the navigation link titled ``title`` points (for example
    ``/traces``); the blueprint registers its own URL rules. Leave both ``None``
    for a contribution with no navigation entry (only hidden pages, or only
    ``scripts``). ``scripts`` and ``styles`` are same-origin URLs (paths starting
    with ``/``, usually files under the blueprint's static folder) that the shell
    loads on every console page: scripts after ``console.js`` and before the
    page's own scripts, styles after ``console.css``. That is how a plugin adds to
    another plugin's page without the page knowing it: its script listens for the
    events that page dispatches. ``before``/``after`` name other pages and order
    the navigation bar (``before`` means further left) and the shell assets.
    """

    blueprint: Blueprint
    title: str | None = None
    path: str | None = None
    scripts: Names = field(default=(), kw_only=True)
    styles: Names = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.blueprint, Blueprint):
            raise TypeError(f"console page {self.name!r} needs a flask.Blueprint, got {type(self.blueprint).__name__}")
        if (self.title is None) != (self.path is None):
            raise ValueError(
                f"console page {self.name!r} needs both a title and a path for its navigation entry, or neither"
            )
        if self.path is not None and (not isinstance(self.path, str) or not self.path.startswith("/")):
            raise ValueError(f"console page {self.name!r} path must start with '/', got {self.path!r}")
        for kind in ("scripts", "styles"):
            value: str | Iterable[str] = getattr(self, kind)
            urls = (value,) if isinstance(value, str) else tuple(value)
            for url in urls:
                if not same_origin_path(url):
                    raise ValueError(
                        f"console page {self.name!r} {kind} must be same-origin paths starting with '/', got {url!r}"
                    )
            object.__setattr__(self, kind, urls)

    @property
    def navigation(self) -> tuple[str, str] | None:
        """``(title, path)`` for the navigation bar, or ``None`` when the page has no entry."""
        return None if self.title is None or self.path is None else (self.title, self.path)


def same_origin_path(url: object) -> bool:
    """Whether ``url`` is a path on this origin: starts with one ``/``, no scheme, host or backslash."""
    return (
        isinstance(url, str)
        and url.startswith("/")
        and not url.startswith("//")
        and "\\" not in url
        and not any(character.isspace() or ord(character) < 32 for character in url)
    )


class ConsoleNotFound(NotFound):
    """Raised by a console page for a 404 in words: the console answers its page (navigation, ``title``,
    ``sentence`` and a link ``back`` as ``(text, path)``) with status 404, e.g.
    ``raise ConsoleNotFound("No such job", f"There is no job {job_id!r}.", back=("All jobs", "/jobs"))``."""

    def __init__(self, title: str, sentence: str, *, back: tuple[str, str] = ("Console home", "/")) -> None:
        super().__init__(description=sentence)
        self.title = title
        self.back = back
