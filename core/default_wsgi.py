"""The console: the Flask app mounted at ``/`` when no plugin provides a WSGI app.

A shell (layout, navigation, workspace switcher, token prompt) around the pages
that plugins contribute through ``plughost_console_pages``, plus the JSON routes
``/version`` and ``/server-info``. Templates and static files are package data
under ``core/console``; nothing loads from another origin. Pages are shells: their
scripts read all data from the API, so :func:`console_shells` can tell which paths
hold none.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import RoutingException

from .console_clashes import check_blueprint_names, check_navigation_paths, check_url_rules
from .context import WORKSPACE_PATTERN
from .contributions import ConsoleNotFound, ConsolePage
from .version import __version__

CONSOLE_DIR = Path(__file__).parent / "console"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'self'"
)
"""Sent with every console answer: scripts and styles only from files the console serves, no inline script;
images also inline (``data:``: an LLM call's images, shown by the trace view)."""

DATA_ENDPOINTS = frozenset({"version", "server_info"})
"""The console's own routes that answer data (JSON), not a page shell or a static file."""


def create_default_wsgi_app(server_info: Callable[[], dict[str, Any]], pages: Sequence[ConsolePage] = ()) -> Flask:
    """The console app, with ``pages`` registered, listed in the navigation and their shell assets loaded,
    in the given order. A URL, blueprint name or navigation path that two pages claim is a ClashError."""
    app = Flask(
        "plughost",
        template_folder=str(CONSOLE_DIR / "templates"),
        static_folder=str(CONSOLE_DIR / "static"),
        static_url_path="/static",
    )
    navigation = [page.navigation for page in pages if page.navigation is not None]
    scripts = [url for page in pages for url in page.scripts]
    styles = [url for page in pages for url in page.styles]
    check_navigation_paths(pages)
    check_blueprint_names(pages)
    for page in pages:
        app.register_blueprint(page.blueprint)

    @app.context_processor
    def console_context() -> dict[str, Any]:
        return {
            "navigation": navigation,
            "shell_scripts": scripts,
            "shell_styles": styles,
            "version": __version__,
            "workspace_pattern": WORKSPACE_PATTERN.pattern.strip("^$"),
        }

    @app.after_request
    def content_security_policy(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.errorhandler(NotFound)
    def not_found(error: NotFound) -> tuple[Any, int]:
        return not_found_answer(error)

    @app.get("/")
    def index() -> str:
        return render_template("console/index.html")

    @app.get("/version", endpoint="version")
    def version() -> Any:
        return jsonify(version=__version__, python=platform.python_version())

    @app.get("/server-info", endpoint="server_info")
    def info() -> Any:
        return jsonify(server_info())

    check_url_rules(app, pages)
    return app


def not_found_answer(error: NotFound) -> tuple[Any, int]:
    """A 404 in words: a console page (navigation, a sentence, a link back) for a browser, JSON for an API
    client. A page that knows what is missing raises :class:`~core.ConsoleNotFound`; any other 404 names
    the path."""
    title, back = "Page not found", ("Console home", "/")
    sentence = f"There is no console page at {request.path}. Pick a page above, or go back to the console home."
    if isinstance(error, ConsoleNotFound):
        title, back, sentence = error.title, error.back, str(error.description)
    if "text/html" not in (kind for kind, _ in request.accept_mimetypes):  # an API client (curl sends */*)
        return jsonify(detail=sentence), 404
    page = render_template(
        "console/not_found.html", title=title, sentence=sentence, back_text=back[0], back_path=back[1]
    )
    return page, 404


def console_shells(app: Flask) -> Callable[[str], bool]:
    """``is_shell(path)``: whether a GET of ``path`` reaches one of ``app``'s page shells or static
    files, matched against its URL rules exactly (no prefix, no redirect); its JSON routes
    (:data:`DATA_ENDPOINTS`) and unknown paths are not shells."""
    adapter = app.url_map.bind("localhost")

    def is_shell(path: str) -> bool:
        try:
            endpoint, _ = adapter.match(path, method="GET")
        except (HTTPException, RoutingException):  # not found, wrong method, or a redirect to another path
            return False
        return endpoint not in DATA_ENDPOINTS

    return is_shell
