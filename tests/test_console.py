"""The console shell (the default WSGI app): pages from plugins, CSP, workspace and token, in Chromium."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from flask import Blueprint
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from core import ConsolePage, hookimpl
from core.default_wsgi import CONTENT_SECURITY_POLICY
from core.testing import client_for, serve_in_thread
from tests.console_probe import TOKEN, Probe, Slot


def test_console_home_is_html_with_csp_and_json_routes_stay(make_app) -> None:
    with client_for(make_app([])) as client:
        home = client.get("/")
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
        assert home.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "<script>" not in home.text  # no inline script: every script has a src
        assert client.get("/static/console/console.js").status_code == 200
        assert client.get("/version").json()["version"]
        assert "plugins" in client.get("/server-info").json()


def test_plugin_pages_are_in_the_navigation_in_hint_order(make_app) -> None:
    other = Blueprint("other", __name__)

    @other.get("/other")
    def other_page() -> str:
        return "other"

    class Other:
        PLUGHOST_NAME = "other"

        @hookimpl
        def plughost_console_pages(self, host: Any) -> ConsolePage:
            return ConsolePage("other", other, "Other", "/other")

    with client_for(make_app([Other(), Probe(before=("other",))])) as client:
        home = client.get("/").text
        assert home.index('href="/probe"') < home.index('href="/other"')  # "probe" before "other"
        assert client.get("/other").text == "other"
    with client_for(make_app([Other(), Probe()])) as client:
        home = client.get("/").text
        assert home.index('href="/other"') < home.index('href="/probe"')  # by name without hints


def test_a_console_page_needs_a_blueprint_and_an_absolute_path() -> None:
    with pytest.raises(TypeError, match="flask.Blueprint"):
        ConsolePage("bad", object(), "Bad", "/bad")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must start with '/'"):
        ConsolePage("bad", Blueprint("bad", __name__), "Bad", "bad")
    with pytest.raises(ValueError, match="both a title and a path"):
        ConsolePage("bad", Blueprint("bad", __name__), "Bad")


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/x.js",
        "//cdn.example/x.js",
        "x.js",
        "/\\cdn.example/x.js",
        "/a b.js",
        "javascript:alert(1)",
        "",
    ],
)
def test_shell_scripts_and_styles_must_be_same_origin_paths(url: str) -> None:
    with pytest.raises(ValueError, match="same-origin paths"):
        ConsolePage("bad", Blueprint("bad", __name__), scripts=(url,))
    with pytest.raises(ValueError, match="same-origin paths"):
        ConsolePage("bad", Blueprint("bad", __name__), styles=(url,))


def test_a_scripts_only_contribution_loads_on_every_page_between_the_shell_and_the_page(make_app, browser_page) -> None:
    from playwright.sync_api import expect

    with client_for(make_app([Slot(), Probe()])) as client:
        home = client.get("/").text
        navigation = home[home.index("<nav") : home.index("</nav>")]
        assert (
            navigation.count("<a ") == 3 and 'href="/probe"' in navigation
        )  # Home, Probe, API docs: the slot has no entry
        for html in (home, client.get("/probe").text):
            assert html.index("console/console.js") < html.index('<script src="/slot/static/slot/slot.js">')
            assert html.index("console/console.css") < html.index(
                '<link rel="stylesheet" href="/slot/static/slot/slot.css">'
            )
        probe = client.get("/probe").text
        assert probe.index("slot/slot.js") < probe.index("probe/probe.js")  # before the page's own scripts
    with client_for(make_app([Probe()])) as client:
        assert "slot.js" not in client.get("/").text  # nothing when the plugin is not loaded
    page = browser_page
    with serve_in_thread(make_app([Slot(), Probe()])) as base:
        page.goto(f"{base}/")
        expect(page.locator("#slot")).to_have_text("slot ran on /")
        expect(page.locator("#slot")).to_have_css("color", "rgb(130, 80, 223)")
        page.goto(f"{base}/probe")
        expect(page.locator("#slot")).to_have_text("slot ran on /probe")


def test_a_plugin_wsgi_app_still_replaces_the_console(make_app) -> None:
    class Legacy:
        PLUGHOST_NAME = "legacy"

        @hookimpl
        def plughost_wsgi_app(self, host: Any) -> Any:
            def app(environ: Any, start_response: Any) -> list[bytes]:
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"legacy"]

            return app

    app = make_app([Legacy(), Probe()])
    with client_for(app) as client:
        assert client.get("/").text == "legacy"
        assert client.get("/probe").text == "legacy"
    assert app.route_claims()[-1].owner == "legacy (WSGI bridge)"


def test_workspace_switcher_and_token_prompt_in_the_browser(make_app, browser_page) -> None:
    from playwright.sync_api import expect

    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request) if "/api/probe" in request.url else None)
    with serve_in_thread(make_app([Probe()])) as base:
        response = page.goto(f"{base}/")
        assert response is not None and response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        page.get_by_role("navigation").get_by_role("link", name="Probe").click()
        # The API answers 401 without the token: the console asks for it, then retries.
        expect(page.locator("#token-dialog")).to_be_visible()
        page.locator("#token").fill(TOKEN)
        page.get_by_role("button", name="Use token").click()
        expect(page.locator("#answer")).to_have_text("workspace default")
        page.locator("#workspace").fill("Team A")  # not a workspace name: refused at the field, nothing stored
        page.locator("#workspace").press("Enter")
        assert page.evaluate("document.getElementById('workspace').validity.patternMismatch")
        assert page.evaluate("localStorage.getItem('plughost.workspace')") is None
        page.locator("#workspace").fill("team-a")
        page.locator("#workspace").press("Enter")
        expect(page.locator("#answer")).to_have_text("workspace team-a")  # kept in the tab: no second prompt
        assert page.evaluate("localStorage.getItem('plughost.workspace')") == "team-a"
        # Data in a template is escaped: the attribute shows as text, and nothing ran.
        expect(page.locator("h1")).to_have_text("<script>alert(1)</script>")
        assert dialogs == []
        assert all(TOKEN not in request.url for request in requests)
        assert requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
        assert httpx.get(f"{base}/probe").headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_docs_and_redoc_load_only_local_assets_and_render(make_app, browser_page) -> None:
    from playwright.sync_api import expect

    page = browser_page
    loaded: set[tuple[str, str]] = set()
    page.on("request", lambda request: loaded.add((request.resource_type, request.url.split("/")[2])))
    with serve_in_thread(make_app([Probe()])) as base:
        host = base.split("/")[2]
        page.goto(f"{base}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("plughost")
        expect(page.locator(".opblock-summary-path").filter(has_text="/api/probe")).to_be_visible()
        page.goto(f"{base}/redoc")
        expect(page.locator("redoc h1, [role=main] h1").first).to_contain_text("plughost")
        scripts = httpx.get(f"{base}/docs").text + httpx.get(f"{base}/redoc").text
        assert "cdn.jsdelivr.net" not in scripts and "fonts.googleapis.com" not in scripts
        assert httpx.get(f"{base}/docs-static/swagger-ui-bundle.js").status_code == 200
        assert httpx.get(f"{base}/docs-static/redoc.standalone.js").status_code == 200
    # No script, style or font from another origin (ReDoc's footer asks cdn.redoc.ly for its logo image).
    assert {origin for kind, origin in loaded if kind in ("script", "stylesheet", "font", "fetch", "document")} == {
        host
    }


ATTACK = """<html><body><iframe id="frame" src="{base}/"></iframe><script>
fetch("{base}/api/jobs", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
       body: '{{"type": "test.echo", "params": {{}}}}'}})
  .then(() => document.body.dataset.result = "sent", (error) => document.body.dataset.result = "failed: " + error);
</script></body></html>"""


def test_a_page_on_another_origin_cannot_frame_the_console_or_write_through_it(
    make_app, register_plugin, browser_page
) -> None:
    from playwright.sync_api import expect

    from plugins.jobs.tests import jobtypes

    register_plugin(jobtypes)
    page = browser_page
    with serve_in_thread(make_app(["jobs", "workspace", "security", jobtypes])) as base:
        attack = Starlette(routes=[Route("/attack.html", lambda request: HTMLResponse(ATTACK.format(base=base)))])
        with serve_in_thread(attack) as attacker:
            page.goto(attacker.replace("127.0.0.1", "attacker.test") + "/attack.html")
            expect(page.locator("body")).to_have_attribute("data-result", "sent")  # no-cors: sent, answer hidden
            framed = page.frame_locator("#frame").locator("nav")
            expect(framed).to_have_count(0)  # frame-ancestors 'self' (and X-Frame-Options): the console never renders
        assert httpx.get(f"{base}/api/jobs").json()["jobs"] == []  # the cross-site write was refused
