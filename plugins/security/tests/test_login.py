"""The console's sign-in with accounts on, in Chromium (Playwright): the form, the session cookie's flags,
CSRF protection, sign-out, throttled failures, what a viewer is shown, and the Accounts page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from core.cli import build_cli
from core.testing import serve_in_thread

PASSWORD = "correct horse battery staple"

CROSS_SITE_FORM = """<html><body>
<form id="attack" method="post" action="{target}/api/security/keys" enctype="text/plain">
  <input name='{{"name": "stolen", "role": "admin", "x": "' value='"}}'>
</form>
<script>document.getElementById("attack").submit();</script>
</body></html>"""


class Console:
    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url
        self.env = env

    def cli(self, *args: str, input: str | None = None) -> str:
        """Run the CLI as an operator would; in a thread, as Playwright holds this one's event loop."""
        with ThreadPoolExecutor(1) as thread:
            invoked = thread.submit(
                CliRunner().invoke, build_cli(), list(args), input=input, env=self.env, catch_exceptions=False
            )
            result = invoked.result()
        assert result.exit_code == 0, result.output
        return result.output.strip()

    def add_user(self, name: str, role: str, workspace: str | None = None) -> None:
        where = ["--workspace", workspace] if workspace else []
        self.cli("users", "add", name, "--role", role, *where, "--password-stdin", input=PASSWORD + "\n")

    def sign_in(self, page: Any, name: str, password: str = PASSWORD, start: str = "/traces") -> None:
        page.goto(f"{self.url}{start}")
        page.wait_for_url(re.compile(r"/login\?next="))
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def console(make_app: Any, sqlite_url: str, tmp_path: Path) -> Iterator[Console]:
    env = {"PLUGHOST_DATABASE_URL": sqlite_url, "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_SECURITY_AUTH": "users"}
    settings = {"database_url": sqlite_url, "security": {"auth": "users", "login_attempts": 3}}
    with serve_in_thread(make_app(["security", "workspace", "otel"], settings)) as url:
        yield Console(url, env)


def test_a_person_signs_in_gets_a_locked_down_cookie_and_a_cross_site_post_is_refused(
    console: Console, browser_page: Any, other_origin: tuple[int, dict[str, str]], screenshot: Any
) -> None:
    console.add_user("alice", "admin")
    page = browser_page
    page.goto(f"{console.url}/traces")
    page.wait_for_url("**/login?next=/traces")
    screenshot(page, "login-form")
    console.sign_in(page, "alice")
    page.wait_for_url(f"{console.url}/traces")
    page.locator("#signed-in-as").wait_for()
    assert page.locator("#signed-in-as").inner_text() == "alice · admin"

    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session, csrf = cookies["plughost_session"], cookies["plughost_csrf"]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax" and session["secure"] is False
    assert csrf["httpOnly"] is False and csrf["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").count("plughost_session") == 0  # not readable by scripts

    # the console's own calls carry the CSRF token; the same call without it is refused
    made = page.evaluate(
        """() => plughost.json("/api/security/keys", {method: "POST", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify({name: "from-console", role: "viewer"})})"""
    )
    assert made["key"].startswith("ph_")
    bare = page.evaluate(
        """() => fetch("/api/security/keys", {method: "POST", headers: {"Content-Type": "application/json"},
                       body: JSON.stringify({name: "no-csrf", role: "viewer"})}).then(r => r.status)"""
    )
    assert bare == 403

    port, served = other_origin
    served["/attack"] = CROSS_SITE_FORM.format(target=console.url)
    # another site: the browser does not send the SameSite cookie with its POST
    page.goto(f"http://localhost:{port}/attack")
    page.wait_for_url(f"{console.url}/api/security/keys")
    assert "sign in at /login" in page.content()
    # the same site on another port (cookies go along): the session's CSRF token is missing
    page.goto(f"http://127.0.0.1:{port}/attack")
    page.wait_for_url(f"{console.url}/api/security/keys")
    assert "missing or wrong CSRF token" in page.content()
    page.goto(f"{console.url}/accounts")
    page.locator("#keys-table tbody tr[data-name]").first.wait_for()
    names = page.locator("#keys-table tbody tr[data-name]").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["from-console"]  # neither the cross-site form nor the call without its token made a key
    screenshot(page, "accounts-page")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert "plughost_session" not in {cookie["name"] for cookie in page.context.cookies()}
    after = httpx.get(f"{console.url}/api/otel/traces", cookies={"plughost_session": session["value"]})
    assert after.status_code == 401  # the session ended on the server, not only in this browser


def test_a_viewer_is_not_shown_the_accounts_page_and_cannot_write(console: Console, browser_page: Any) -> None:
    console.add_user("vera", "viewer")
    page = browser_page
    console.sign_in(page, "vera")
    page.wait_for_url(f"{console.url}/traces")
    page.locator("#signed-in-as").wait_for()
    assert page.evaluate("document.body.dataset.role") == "viewer"
    assert page.locator('.nav a[href="/accounts"]').is_hidden()
    status = page.evaluate(
        """() => plughost.api("/api/otel/traces/0af7651916cd43dd8448eb211c80319c", {method: "DELETE"})
                 .then(r => r.status)"""
    )
    assert status == 403


def test_someone_of_one_workspace_is_taken_to_it(console: Console, browser_page: Any) -> None:
    console.add_user("tess", "editor", "team-a")
    page = browser_page
    console.sign_in(page, "tess")
    page.wait_for_url(f"{console.url}/traces?workspace=team-a")  # the list names its workspace in its URL
    page.locator("#signed-in-as").wait_for()
    assert page.locator("#signed-in-as").inner_text() == "tess · editor"
    assert page.locator("#workspace").input_value() == "team-a"


def test_failed_sign_ins_are_throttled_and_the_form_says_so(console: Console, browser_page: Any) -> None:
    console.add_user("bob", "viewer")
    page = browser_page
    for _ in range(3):
        console.sign_in(page, "bob", "wrong password")
        page.wait_for_url(re.compile(r"/login\?failed="))
        assert page.locator("#login-failed").is_visible()
    console.sign_in(page, "bob")  # the right password, too late
    page.wait_for_url(re.compile(r"/login\?throttled="))
    assert "Too many failed attempts" in page.locator("#login-throttled").inner_text()
    refused = httpx.post(
        f"{console.url}/api/security/login",
        data={"username": "bob", "password": PASSWORD},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    other = httpx.post(
        f"{console.url}/api/security/login",
        data={"username": "nobody", "password": "x"},
        headers={"Accept": "application/json"},
    )
    assert other.status_code == 401 and other.json() == {"detail": "wrong username or password"}


def test_a_sign_in_returns_to_the_page_asked_for_with_its_query(console: Console) -> None:
    console.add_user("dan", "viewer")
    asked = "/traces?service=shop&status=error"
    to_form = httpx.get(f"{console.url}{asked}", headers={"Accept": "text/html"})
    assert to_form.status_code == 303 and to_form.headers["location"] == f"/login?next={quote(asked, safe='/')}"
    form = {"username": "dan", "next": asked}
    failed = httpx.post(f"{console.url}/api/security/login", data={**form, "password": "wrong"})
    assert failed.status_code == 303
    assert parse_qs(urlsplit(failed.headers["location"]).query)["next"] == [asked]  # "&status=error" kept
    signed_in = httpx.post(f"{console.url}/api/security/login", data={**form, "password": PASSWORD})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == asked


def test_behind_https_the_session_cookie_is_secure(console: Console) -> None:
    console.add_user("carol", "viewer")
    signed_in = httpx.post(
        f"{console.url}/api/security/login",
        data={"username": "carol", "password": PASSWORD, "next": "//evil.example/"},
        headers={"X-Forwarded-Proto": "https"},  # what a TLS-terminating proxy on this host sends
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"  # never an open redirect
    set_cookies = signed_in.headers.get_list("set-cookie")
    session = next(c for c in set_cookies if c.startswith("plughost_session="))
    assert "Secure" in session and "HttpOnly" in session and "SameSite=lax" in session
