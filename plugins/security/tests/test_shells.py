"""With a token set, page shells (console pages, their static files, the API docs pages) load without it;
all data, and every other check, still needs what it needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from flask import Blueprint, render_template_string

from core import ConsolePage, RouterContribution, hookimpl
from core.testing import serve_in_thread
from plugins.security.tests.test_security import TOKEN, Spend, assert_security_headers

PAGE = '{% extends "console/layout.html" %}{% block content %}<h1>Hello {{ name }}</h1>{% endblock %}'


class Hello:
    """A console page at ``/hello`` and ``/hello/<name>``, an API route, and a native route that
    shadows one of the page's paths (so that path is the API's, not a shell)."""

    PLUGHOST_NAME = "hello"

    @hookimpl
    def plughost_console_pages(self, host: Any) -> ConsolePage:
        pages = Blueprint("hello", __name__)

        @pages.get("/hello")
        def hello() -> str:
            return render_template_string(PAGE, name="world")

        @pages.get("/hello/<name>")
        def hello_name(name: str) -> str:
            return render_template_string(PAGE, name=name)

        return ConsolePage("hello", pages, "Hello", "/hello")

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        router = APIRouter()

        @router.get("/api/hello")
        async def data() -> dict[str, str]:
            return {"secret": "data"}

        @router.get("/hello/secret")
        async def shadow() -> dict[str, str]:
            return {"secret": "shadowed"}

        return RouterContribution("hello", router)


@pytest.fixture
def base(make_app: Any, register_plugin: Any) -> Iterator[str]:
    register_plugin(Hello())
    with serve_in_thread(make_app(["security"], {"security": {"token": TOKEN}})) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "head"),
    [
        ("/", 200),
        ("/hello", 200),
        ("/hello/anyone", 200),
        ("/static/console/console.js", 200),
        ("/docs", 405),  # FastAPI's GET routes answer HEAD with 405: not refused, just not served
        ("/redoc", 405),
        ("/docs-static/swagger-ui.css", 200),
    ],
)
def test_page_shells_and_their_files_load_without_the_token(base: str, path: str, head: int) -> None:
    response = httpx.get(f"{base}{path}")
    assert response.status_code == 200
    assert_security_headers(response)
    assert httpx.head(f"{base}{path}").status_code == head


def test_a_console_page_is_served_as_the_shell_with_its_token_prompt(base: str) -> None:
    page = httpx.get(f"{base}/hello/anyone")
    assert "<h1>Hello anyone</h1>" in page.text
    assert 'id="token-dialog"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/version",  # the console's JSON routes
        "/server-info",
        "/api/hello",  # an API route
        "/hello/secret",  # matches the page's rule, but a native route answers it
        "/openapi.json",  # the schema: the docs page cannot show it without the token
        "/hello/",  # no rule matches exactly (Flask would redirect)
        "/no/such/page",  # unknown paths do not even say they do not exist
    ],
)
def test_data_and_unknown_paths_still_need_the_token(base: str, path: str) -> None:
    missing = httpx.get(f"{base}{path}")
    assert missing.status_code == 401, path
    assert missing.headers["www-authenticate"] == 'Bearer realm="plughost"'
    assert "secret" not in missing.text
    assert (
        httpx.get(f"{base}{path}", headers={"Authorization": "Bearer wrong-token-of-enough-length"}).status_code == 401
    )


def test_with_the_token_the_data_answers(base: str) -> None:
    authorised = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{base}/api/hello", headers=authorised).json() == {"secret": "data"}
    assert httpx.get(f"{base}/hello/secret", headers=authorised).json() == {"secret": "shadowed"}
    assert httpx.get(f"{base}/server-info", headers=authorised).json()["plugins"]["hello"] == "enabled"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_reads_of_a_shell_skip_the_token(base: str, method: str) -> None:
    assert httpx.request(method, f"{base}/hello").status_code == 401


def test_the_host_check_still_guards_the_shells(base: str) -> None:
    response = httpx.get(f"{base}/hello", headers={"Host": "rebound.attacker.example"})
    assert response.status_code == 403
    assert "is not allowed" in response.text


def test_a_websocket_to_a_shell_path_still_needs_the_token(base: str) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as refused, connect(base.replace("http", "ws", 1) + "/hello"):
        pass
    assert refused.value.response.status_code == 403  # closed by the middleware before it is accepted


def test_nothing_of_a_replacing_wsgi_app_is_exempt(make_app: Any, register_plugin: Any) -> None:
    """A plugin's own WSGI app is not the console: the core cannot know which of its paths hold data."""
    register_plugin(Spend())
    with serve_in_thread(make_app(["security"], {"security": {"token": TOKEN}})) as url:
        assert httpx.get(f"{url}/").status_code == 401
        assert httpx.get(f"{url}/static/console/console.js").status_code == 401
        assert httpx.get(f"{url}/docs").status_code == 200  # the API docs page is the core's, not the app's


def test_without_a_token_nothing_changes(make_app: Any, register_plugin: Any) -> None:
    register_plugin(Hello())
    with serve_in_thread(make_app(["security"])) as url:
        assert httpx.get(f"{url}/api/hello").json() == {"secret": "data"}
        assert httpx.get(f"{url}/hello").status_code == 200
