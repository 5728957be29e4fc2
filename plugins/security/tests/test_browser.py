"""The security plugin against a real browser (headless Chromium): pages on other origins try to write,
with and without a token, and to frame the console that a token-holding tab has open.

Chromium maps ``*.test`` to 127.0.0.1, so a page served from ``http://attacker.test:<port>``
is a genuine cross-site origin that reaches the server on loopback, as a DNS-rebinding
or CSRF attacker's page would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.testing import serve_in_thread
from plugins.security.tests.test_security import TOKEN, Spend, SpendRoutes

ATTACK = """<html><body><script>
fetch("{target}/gateway/chat/invocations", {{method: "POST", mode: "no-cors",
       headers: {{"Content-Type": "text/plain"}}, body: '{{"messages": []}}'}})
  .then(() => document.body.setAttribute("data-result", "sent"),
        (error) => document.body.setAttribute("data-result", "failed: " + error));
</script></body></html>"""

ALLOWED = """<html><body><script>
fetch("{target}/gateway/chat/invocations", {{method: "POST", mode: "cors", credentials: "include",
       headers: {{"Content-Type": "application/json"}}, body: "{{}}"}})
  .then((response) => response.json())
  .then((answer) => document.body.setAttribute("data-result", "read: " + answer.spent),
        (error) => document.body.setAttribute("data-result", "failed: " + error));
</script></body></html>"""


CONSOLE_ATTACK = """<html><body><script>
const frame = document.createElement("iframe");
frame.addEventListener("load", () => document.body.setAttribute("data-framed", "loaded"));
frame.src = "{target}/traces";
document.body.append(frame);
const write = "{target}/gateway/chat/invocations";
Promise.allSettled([
  fetch(write, {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}}),
  fetch(write, {{method: "POST", mode: "cors", credentials: "include",
                headers: {{"Authorization": "Bearer a-guessed-token-long-enough", "Content-Type": "application/json"}},
                body: "{{}}"}}),
]).then((results) => document.body.setAttribute("data-result", results.map((result) => result.status).join(" ")));
</script></body></html>"""


@pytest.fixture
def chromium(chromium_path: str) -> str:
    """The system Chromium (``core.testing``: skipped without it, failing under ``CI``)."""
    return chromium_path


def visit(chromium: str, url: str, profile: Path) -> str:
    """Load ``url`` in headless Chromium, let its script run, and return the final DOM."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP *.test 127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("token", [None, TOKEN])
def test_a_cross_site_page_cannot_make_the_gateway_spend_keys(
    chromium: str, other_origin: Any, make_app: Any, register_plugin: Any, tmp_path: Path, token: str | None
) -> None:
    spend = register_plugin(Spend())
    page_port, served = other_origin
    with serve_in_thread(make_app(["security"], {"security": {"token": token}})) as target:
        served["/attack.html"] = ATTACK.format(target=target)
        dom = visit(chromium, f"http://attacker.test:{page_port}/attack.html", tmp_path / "profile")
    assert 'data-result="sent"' in dom  # the browser did send it (no-cors hides the answer from the page)
    assert spend.calls == []  # and the server refused it before the handler ran


def test_an_allowed_origin_passes_the_preflight_and_reads_the_answer(
    chromium: str, other_origin: Any, make_app: Any, register_plugin: Any, tmp_path: Path
) -> None:
    spend = register_plugin(Spend())
    page_port, served = other_origin
    app = make_app(["security"], {"security": {"allowed_origins": [f"http://app.test:{page_port}"]}})
    with serve_in_thread(app) as target:
        served["/app.html"] = ALLOWED.format(target=target)
        dom = visit(chromium, f"http://app.test:{page_port}/app.html", tmp_path / "profile")
    assert 'data-result="read: api key"' in dom
    assert spend.calls == ["gateway"]


def test_a_cross_site_page_cannot_drive_a_token_holding_console(
    other_origin: Any, make_app: Any, register_plugin: Any, browser_page: Any
) -> None:
    """A tab holds the token in the console; a page on another site, in the same browser, tries to
    write directly and to frame the console (whose pages load without the token)."""
    from playwright.sync_api import expect

    spend = register_plugin(SpendRoutes())
    page_port, served = other_origin
    app = make_app(["otel", "workspace", "security"], {"security": {"token": TOKEN}})
    with serve_in_thread(app) as target:
        console = browser_page
        console.goto(f"{target}/traces")
        console.get_by_label("Token", exact=True).fill(TOKEN)
        console.get_by_role("button", name="Use token").click()
        expect(console.locator("#token-dialog")).to_be_hidden()
        expect(console.locator("#list-error")).to_be_empty()

        served["/attack.html"] = CONSOLE_ATTACK.format(target=target)
        attacker = console.context.new_page()
        attacker.goto(f"http://attacker.test:{page_port}/attack.html")
        expect(attacker.locator("body")).to_have_attribute(
            "data-result", "fulfilled rejected"
        )  # sent blind; preflight refused
        expect(attacker.locator("body")).to_have_attribute("data-framed", "loaded")
        framed = attacker.frames[1]
        assert framed.url.startswith("chrome-error://")  # the browser refused to show the console in the frame
        assert framed.locator("#token-dialog").count() == 0
    assert spend.calls == []


def test_a_cross_site_page_cannot_drive_a_signed_in_console(
    other_origin: Any, make_app: Any, register_plugin: Any, browser_page: Any, tmp_path: Path
) -> None:
    """The same probe with accounts on: a person is signed in to the console (its session cookie in the
    browser); a page on another site, in the same browser, tries to write and to frame the console."""
    from playwright.sync_api import expect

    from plugins.security.tests.test_login import Console

    spend = register_plugin(SpendRoutes())
    page_port, served = other_origin
    data_dir = tmp_path / "data"
    app = make_app(["otel", "workspace", "security"], {"data_dir": data_dir, "security": {"auth": "users"}})
    with serve_in_thread(app) as target:
        console = Console(target, {"PLUGHOST_DATA_DIR": str(data_dir), "PLUGHOST_SECURITY_AUTH": "users"})
        console.add_user("alice", "admin")
        page = browser_page
        console.sign_in(page, "alice")
        page.wait_for_url(f"{target}/traces")
        expect(page.locator("#signed-in-as")).to_have_text("alice · admin")
        own = page.evaluate('() => plughost.api("/gateway/chat/invocations", {method: "POST"}).then(r => r.status)')
        assert own == 200 and spend.calls == ["gateway"]  # the console itself may

        served["/attack.html"] = CONSOLE_ATTACK.format(target=target)
        attacker = page.context.new_page()
        attacker.goto(f"http://attacker.test:{page_port}/attack.html")
        expect(attacker.locator("body")).to_have_attribute("data-result", "fulfilled rejected")
        expect(attacker.locator("body")).to_have_attribute("data-framed", "loaded")
        framed = attacker.frames[1]
        assert framed.url.startswith("chrome-error://")
        assert framed.locator("#signed-in-as").count() == 0
    assert spend.calls == ["gateway"]  # nothing more
