"""``Host.is_page_shell``: which GET paths answer a page without data, as the app routes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from flask import Blueprint, Flask

from core import ConsolePage, RouterContribution, hookimpl
from core.factory import assemble, build_host
from core.settings import CoreSettings


class Pages:
    """A console page with a variable rule and a static folder, and an API route under one of its paths."""

    PLUGHOST_NAME = "pages"

    @hookimpl
    def plughost_console_pages(self, host: Any) -> ConsolePage:
        pages = Blueprint("pages", __name__, static_folder=".", static_url_path="/reports/static")
        pages.add_url_rule("/reports", "list", lambda: "list")
        pages.add_url_rule("/reports/<report_id>", "view", lambda report_id: report_id)
        return ConsolePage("pages", pages, "Reports", "/reports")

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        router = APIRouter()
        router.add_api_route("/reports/export", lambda: {"rows": []}, methods=["POST"])
        router.add_api_route("/api/reports", lambda: {"rows": []}, methods=["GET"])
        return RouterContribution("pages", router)


class Replacement:
    PLUGHOST_NAME = "replacement"

    @hookimpl
    def plughost_wsgi_app(self, host: Any) -> Flask:
        app = Flask("replacement")
        app.add_url_rule("/reports", "reports", lambda: "its own data")
        return app


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app([Pages()])


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/reports",
        "/reports/r-1",
        "/reports/static/test_page_shells.py",  # the page's static folder (the file need not exist)
        "/static/console/console.js",
        "/docs",
        "/redoc",
        "/docs/oauth2-redirect",
        "/docs-static/swagger-ui-bundle.js",
    ],
)
def test_console_pages_static_files_and_docs_pages_are_shells(app: Any, path: str) -> None:
    assert app.assembly.host.is_page_shell(path)


@pytest.mark.parametrize(
    "path",
    [
        "/version",
        "/server-info",
        "/openapi.json",
        "/health",
        "/api/reports",
        "/reports/export",  # the page's rule matches it, but an API route (POST only) answers it first
        "/reports/",  # the console would redirect: no exact match
        "/reports/a/b",
        "/nowhere",
    ],
)
def test_data_routes_and_unknown_paths_are_not(app: Any, path: str) -> None:
    assert not app.assembly.host.is_page_shell(path)


def test_a_replacing_wsgi_app_has_no_shells(make_app: Any) -> None:
    host = make_app([Replacement()]).assembly.host
    assert not host.is_page_shell("/reports")
    assert not host.is_page_shell("/")
    assert host.is_page_shell("/docs")


def test_nothing_is_a_shell_before_the_app_is_built(tmp_path: Path) -> None:
    host = build_host(CoreSettings(plugins=[], data_dir=tmp_path), given={"pages": Pages()})
    assembly = assemble(host)
    assert assembly.console_shells is not None and assembly.console_shells("/reports")
    assert not host.is_page_shell("/reports")
