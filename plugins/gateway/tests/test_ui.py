"""The gateway's console pages in Chromium: configuration through the forms (errors at the field,
write-only keys, 409 on delete), the streaming playground, and usage charts, against the fake provider."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.gateway.tests.kit import API_KEY, KEK, configure
from plugins.gateway.tests.test_tracing import wait_for

PAGES = (
    "/gateway",
    "/gateway/secrets",
    "/gateway/models",
    "/gateway/endpoints",
    "/gateway/playground",
    "/gateway/usage",
)
XSS = "<script>alert(1)</script>"


@pytest.fixture
def console(make_app: Any) -> Iterator[str]:
    """A gateway with the console's write rules (security) and workspaces."""
    app = make_app(["gateway", "jobs", "workspace", "security"], {"gateway": {"allow_private": True, "kek": KEK}})
    with serve_in_thread(app) as base:
        yield base


def test_every_page_is_html_and_no_api_route_claims_it(console: str) -> None:
    for path in PAGES:
        response = httpx.get(console + path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), path
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert httpx.get(console + "/gateway/v1/models").json() == {
        "object": "list",
        "data": [],
    }  # the API's own GETs stay the API's
    navigation = re.findall(r'<a href="(/[a-z]*)"', httpx.get(console + "/").text.split("</nav>")[0])
    assert navigation == ["/", "/jobs", "/gateway", "/docs"]  # Gateway right after Jobs


def test_configure_through_the_forms(console: str, provider: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{console}/")
    page.get_by_role("navigation", name="Console pages").get_by_role("link", name="Gateway").click()
    expect(page.locator('[data-count="secrets"]')).to_have_text("none yet")
    page.get_by_role("navigation", name="Gateway pages").get_by_role("link", name="Secrets").click()
    expect(page.locator("#gw-list tbody")).to_contain_text("No secrets yet")

    page.get_by_role("button", name="New secret").click()
    form = page.locator("#gw-form")
    form.locator('input[name="name"]').fill("openai-key")
    form.locator('input[name="base_url"]').fill(f"{provider[0]}/v1")
    form.get_by_role("button", name="Save").click()  # no key: the API's 422 shows at the key's field
    expect(form.locator('[data-field="api_key"] .field-error')).to_contain_text("at least 1")
    expect(form.locator('[data-field="name"] .field-error')).to_be_empty()
    form.locator('input[name="api_key"]').fill(API_KEY)
    form.get_by_role("button", name="Save").click()
    row = page.locator('#gw-list tr[data-name="openai-key"]')
    expect(row).to_contain_text("sk-…6789")
    expect(form).to_be_hidden()
    assert API_KEY not in page.content() and form.locator('input[name="api_key"]').input_value() == ""
    row.get_by_role("button", name="Edit").click()
    expect(form.locator("#gw-form-title")).to_have_text("Edit secret openai-key")
    expect(form.locator('input[name="api_key"]')).to_have_value("")  # never pre-filled
    expect(form.locator('input[name="name"]')).to_have_attribute("readonly", "")
    form.locator('input[name="api_key"]').fill("sk-replaced-key-4321")
    form.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("sk-…4321")
    expect(page.locator("#gw-message")).to_have_text("Saved secret openai-key.")
    page.get_by_role("button", name="New secret").click()
    form.locator('input[name="name"]').fill("openai-key")
    form.locator('input[name="api_key"]').fill(API_KEY)
    form.get_by_role("button", name="Save").click()  # the name is taken: the 409 shows at the name
    expect(form.locator('[data-field="name"] .field-error')).to_contain_text("a secret named 'openai-key' exists")
    form.get_by_role("button", name="Cancel").click()
    assert API_KEY not in page.content() and form.locator('input[name="api_key"]').input_value() == ""

    page.get_by_role("link", name="Models").click()
    expect(page.locator("#gw-list tbody")).to_contain_text("No models yet")
    for name, model in (("gpt", "echo-gpt"), ("odd", XSS)):
        page.get_by_role("button", name="New model").click()
        form.locator('input[name="name"]').fill(name)
        form.locator('input[name="model"]').fill(model)
        expect(form.locator('select[name="secret"]')).to_have_value("openai-key")
        form.get_by_role("button", name="Save").click()
        expect(page.locator(f'#gw-list tr[data-name="{name}"]')).to_contain_text(model)
    expect(page.locator('#gw-list tr[data-name="odd"] td').nth(2)).to_have_text(XSS)  # text, not markup
    page.locator('#gw-list tr[data-name="odd"]').get_by_role("button", name="Edit").click()
    expect(form.locator('input[name="model"]')).to_have_value(XSS)
    form.locator('select[name="provider"]').select_option("anthropic")
    form.locator('input[name="model"]').fill("echo-odd")
    form.get_by_role("button", name="Save").click()
    expect(page.locator('#gw-list tr[data-name="odd"]')).to_contain_text("anthropic")
    assert httpx.get(f"{console}/api/gateway/models/odd").json()["model"] == "echo-odd"

    page.get_by_role("link", name="Endpoints").click()
    expect(page.locator("#gw-list tbody")).to_contain_text("No endpoints yet")  # the page's script is running
    page.get_by_role("button", name="New endpoint").click()
    form.locator('input[name="name"]').fill("chat")
    form.locator(".gw-member-model").select_option("gpt")
    form.locator(".gw-member-weight").fill("0")
    form.get_by_role("button", name="Save").click()
    expect(form.locator('[data-field="models"] .field-error')).to_contain_text(
        "#1 weight: Input should be greater than or equal to 1"
    )
    form.locator(".gw-member-weight").fill("2")
    form.get_by_role("button", name="Save").click()
    expect(page.locator('#gw-list tr[data-name="chat"]')).to_contain_text("gpt (2)")
    page.locator('#gw-list tr[data-name="chat"]').get_by_role("button", name="Edit").click()
    form.get_by_role("button", name="Add model").click()
    form.locator(".gw-member-model").nth(1).select_option("odd")
    form.get_by_role("button", name="Save").click()
    expect(page.locator('#gw-list tr[data-name="chat"]')).to_contain_text("gpt (2) → odd (1)")
    members = httpx.get(f"{console}/api/gateway/endpoints/chat").json()["models"]
    assert members == [{"model": "gpt", "weight": 2}, {"model": "odd", "weight": 1}]

    page.get_by_role("link", name="Models").click()
    delete = page.locator('#gw-list tr[data-name="gpt"]').get_by_role("button", name="Delete")
    delete.click()
    page.locator('#gw-list tr[data-name="gpt"]').get_by_role("button", name="Really delete?").click()
    expect(page.locator("#gw-message")).to_contain_text(
        "Cannot delete model gpt: it is in use (model 'gpt' is used by endpoints chat)"
    )
    expect(page.locator('#gw-list tr[data-name="gpt"]')).to_be_visible()
    assert httpx.get(f"{console}/api/gateway/models/gpt").status_code == 200
    assert dialogs == []


def test_playground_streams_keeps_history_stops_and_clears(console: str, provider: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    provider_url, seen = provider
    configure(console, provider_url, "chat", [("gpt", "openai", "echo-gpt", 1)])
    configure(console, provider_url, "slowpoke", [("slow", "openai", "slow", 1)])
    page = browser_page
    page.goto(f"{console}/gateway/endpoints")
    page.locator('#gw-list tr[data-name="chat"]').get_by_role("link", name="try").click()
    expect(page.locator("#gw-endpoint")).to_have_value("chat")
    answers = page.locator('.gw-turn[data-role="assistant"]')
    page.get_by_label("Message").fill("hello there")
    page.get_by_role("button", name="Send").click()
    expect(answers.first.locator(".gw-text")).to_have_text("echo-gpt: hello there")
    expect(answers.first.locator(".gw-note")).to_have_text(
        "5 input · 3 output tokens"
    )  # the stream's usage chunk (3 words)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    page.get_by_label("Message").fill(XSS)
    page.get_by_label("Message").press("Enter")
    expect(answers.nth(1).locator(".gw-text")).to_have_text(f"echo-gpt: {XSS}")  # text, not markup
    assert [(m["role"], m["content"]) for m in seen[-1]["body"]["messages"]] == [
        ("user", "hello there"),
        ("assistant", "echo-gpt: hello there"),
        ("user", XSS),
    ]  # the history went with the turn
    assert seen[-1]["body"]["stream"] is True

    page.locator("#gw-endpoint").select_option("slowpoke")
    page.get_by_label("Message").fill("take your time")
    page.get_by_role("button", name="Send").click()
    expect(answers.nth(2)).to_have_class(re.compile(r"\bstreaming\b"))
    page.get_by_role("button", name="Stop").click()
    expect(answers.nth(2)).to_contain_text("stopped")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    expect(page.locator('.gw-turn[data-role="user"]').nth(2)).to_contain_text("not sent with the next turn")

    page.get_by_role("button", name="Clear").click()
    expect(page.locator(".gw-turn")).to_have_count(0)
    page.locator("#gw-endpoint").select_option("chat")
    page.get_by_label("Message").fill("fresh start")
    page.get_by_role("button", name="Send").click()
    expect(answers.first.locator(".gw-text")).to_have_text("echo-gpt: fresh start")
    assert [m["content"] for m in seen[-1]["body"]["messages"]] == ["fresh start"]

    wait_for(
        lambda: sum(call["endpoint"] == "chat" for call in httpx.get(f"{console}/api/gateway/usage").json()) == 3
    )  # stored in batches
    page.get_by_role("navigation", name="Gateway pages").get_by_role("link", name="Usage").click()
    recent = page.locator("#gw-calls tbody tr").filter(has_text="chat")
    expect(recent).to_have_count(3)
    expect(recent.first).to_contain_text("yes")  # streamed
    expect(page.locator("#gw-summary tbody tr").filter(has_text="chat").locator("td").nth(2)).to_have_text("3")
    chart = page.locator('.gw-chart[data-endpoint="chat"]')
    expect(chart.locator('[data-series="latency"] circle.point')).to_have_count(3)
    expect(chart.locator('[data-series="tokens"] circle.point')).to_have_count(3)
    expect(chart.locator("polyline")).to_have_count(0)  # points: calls minutes apart are never joined
    page.locator("#gw-window").select_option("900")
    expect(recent).to_have_count(3)


def test_playground_shows_errors_before_and_during_the_stream(console: str, provider: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    configure(console, provider[0], "broken", [("bad", "openai", "fail-500", 1)])
    configure(console, provider[0], "cut", [("cut", "openai", "cut", 1)])
    page = browser_page
    page.goto(f"{console}/gateway/playground?endpoint=broken")
    expect(page.locator("#gw-endpoint")).to_have_value("broken")  # the list loads after the page: Send waits for it
    answers = page.locator('.gw-turn[data-role="assistant"]')
    page.get_by_label("Message").fill("hello")
    page.get_by_role("button", name="Send").click()
    expect(answers.first).to_have_class(re.compile(r"\bfailed\b"))
    expect(answers.first).to_contain_text("502")  # the gateway's answer before any event
    page.locator("#gw-endpoint").select_option("cut")
    page.get_by_label("Message").fill("one two three four")
    page.get_by_role("button", name="Send").click()
    expect(answers.nth(1).locator(".gw-text")).to_have_text("cut: one")  # what came before the provider hung up
    expect(answers.nth(1).locator(".gw-note")).to_contain_text("truncated")  # the stream's final error event
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_usage_page_explains_an_empty_window(console: str, browser_page: Any) -> None:
    from playwright.sync_api import expect

    browser_page.goto(f"{console}/gateway/usage")
    expect(browser_page.locator("#gw-calls tbody")).to_contain_text("No calls in this window")
    expect(browser_page.locator("#gw-charts")).to_contain_text("No calls in this window")
    expect(browser_page.locator(".gw-chart")).to_have_count(0)


def test_edit_routes_answer_like_create(console: str, provider: Any) -> None:
    """The PUTs the edit forms use: a missing target is 404, a missing reference 400 naming it, a bad body 422."""
    configure(console, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    api = httpx.Client(base_url=f"{console}/api/gateway")
    assert api.put("/models/nope", json={"provider": "openai", "model": "m", "secret": "openai-key"}).status_code == 404
    missing = api.put("/models/gpt", json={"provider": "openai", "model": "m", "secret": "nope"})
    assert missing.status_code == 400 and "secret 'nope' does not exist" in missing.json()["detail"]
    assert api.put("/models/gpt", json={"provider": "mistral", "model": "m", "secret": "openai-key"}).status_code == 422
    assert (
        api.put("/models/gpt", json={"provider": "anthropic", "model": "echo-claude", "secret": "openai-key"}).json()[
            "provider"
        ]
        == "anthropic"
    )
    assert api.put("/endpoints/nope", json={"models": [{"model": "gpt"}]}).status_code == 404
    assert api.put("/endpoints/chat", json={"models": [{"model": "nope"}]}).status_code == 400
    assert api.put("/endpoints/chat", json={"models": []}).status_code == 422
    api.post(
        "/models", json={"name": "gpt2", "provider": "openai", "model": "echo-two", "secret": "openai-key"}
    ).raise_for_status()
    assert api.put("/endpoints/chat", json={"models": [{"model": "gpt2", "weight": 3}]}).json()["models"] == [
        {"model": "gpt2", "weight": 3}
    ]
    answer = httpx.post(f"{console}/gateway/chat/invocations", json={"messages": [{"role": "user", "content": "hi"}]})
    assert answer.json()["choices"][0]["message"]["content"] == "echo-two: hi"  # the change reaches calls at once
