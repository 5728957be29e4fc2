"""The Flask app mounted at ``/`` when no plugin provides a WSGI app."""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

from .version import __version__


def create_default_wsgi_app(server_info: Callable[[], dict[str, Any]]) -> Flask:
    """A small Flask app: an index, ``/version`` and ``/server-info`` (``server_info()`` as JSON)."""
    app = Flask("plughost")

    @app.get("/")
    def index() -> Any:
        return jsonify(name="plughost", version=__version__, docs="/docs", health="/health")

    @app.get("/version")
    def version() -> Any:
        return jsonify(version=__version__, python=platform.python_version())

    @app.get("/server-info")
    def info() -> Any:
        return jsonify(server_info())

    return app
