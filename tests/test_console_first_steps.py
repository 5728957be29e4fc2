"""A new user's first steps in the console, in Chromium: empty pages show the snippet that fills them
(run here as pasted), and the workspace switcher lists the workspaces that hold data and says when a
chosen one holds none yet; the workspace is in the URL."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.gateway.tests.kit import KEK

PLUGINS = ["otel", "gateway", "jobs", "workspace", "security"]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def base(make_app: Callable[..., Any]) -> Iterator[str]:
    app = make_app(PLUGINS, {"otel": {"grpc_address": ""}, "gateway": {"kek": KEK, "allow_private": True}})
    with serve_in_thread(app) as url:
        yield url


def paste(snippet: str, **replacements: str) -> str:
    for example, actual in replacements.items():
        snippet = snippet.replace(example, actual)
    return subprocess.run(["sh", "-c", snippet], check=True, capture_output=True, text=True, timeout=60).stdout


def test_empty_trace_list_and_gateway_show_snippets_that_fill_them(
    base: str, llmock: Any, browser_page: Any, screenshot: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{base}/traces")
    empty = page.locator(".empty-state")
    expect(empty).to_contain_text("No traces yet")
    screenshot(page, "traces-empty")
    paste(empty.locator("pre").inner_text())
    page.reload()
    expect(page.locator("#traces tbody tr")).to_have_count(1)
    expect(page.locator("#traces tbody")).to_contain_text("hello")

    page.goto(f"{base}/gateway/endpoints")
    empty = page.locator(".empty-state")
    expect(empty).to_contain_text("No endpoints yet")
    expect(empty).to_contain_text("PLUGHOST_GATEWAY_ALLOW_PRIVATE=1")
    answered = paste(empty.locator("pre").inner_text(), **{"http://127.0.0.1:9100/v1": llmock.base_url("openai")})
    assert '"object":"chat.completion"' in answered
    page.reload()
    expect(page.locator("tr[data-name='chat']")).to_be_visible()


def test_the_workspace_switcher_lists_workspaces_and_says_when_one_is_empty(
    base: str, browser_page: Any, screenshot: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    httpx.post(
        f"{base}/api/jobs",
        json={"type": "otel.retention", "params": {"days": 1}},
        headers={"X-Plughost-Workspace": "team-a"},
    )
    assert httpx.get(f"{base}/api/workspaces").json()["workspaces"] == ["default", "team-a"]
    page = browser_page
    page.goto(f"{base}/jobs")
    options = page.locator("#workspaces option")
    expect(options).to_have_count(2)
    assert [options.nth(index).get_attribute("value") for index in range(2)] == ["default", "team-a"]
    expect(page.locator("#workspace-empty")).to_have_count(0)  # default holds no data, but is always offered

    box = page.locator("#workspace")
    box.fill("team-b")  # a typo, or a workspace no one wrote to yet
    box.press("Enter")
    expect(page).to_have_url(f"{base}/jobs?workspace=team-b")
    notice = page.locator("#workspace-empty")
    expect(notice).to_contain_text("Workspace \u201cteam-b\u201d has no data yet")
    screenshot(page, "workspace-empty")
    notice.get_by_role("link", name="team-a").click()
    expect(page).to_have_url(f"{base}/jobs?workspace=team-a")
    expect(page.locator("#workspace-empty")).to_have_count(0)
    expect(page.locator("#jobs tbody tr")).to_have_count(1)  # team-a's job
    page.reload()
    expect(box).to_have_value("team-a")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)

    other = page.context.browser.new_context()  # a pasted link, in a browser that never chose a workspace
    try:
        pasted = other.new_page()
        pasted.goto(f"{base}/jobs?workspace=team-a")
        expect(pasted.locator("#workspace")).to_have_value("team-a")
        expect(pasted.locator("#jobs tbody tr")).to_have_count(1)
    finally:
        other.close()


def test_span_names_stay_readable_with_the_panel_open_and_missing_values_read_a_dash(
    base: str, browser_page: Any
) -> None:
    """A failed LLM call deep in a trace of a long-named service: with the span panel open, every
    row's name shows whole, and its token counts, which the call never reported, read "—"."""
    from playwright.sync_api import expect

    end = time.time_ns() - 10**9
    names = ["handle ticket", "plan the answer", "call the model", "embeddings.create", "chat gpt-4o"]
    spans = [
        {
            "traceId": TRACE_ID,
            "spanId": f"{depth + 1:016x}",
            **({"parentSpanId": f"{depth:016x}"} if depth else {}),
            "name": name,
            "startTimeUnixNano": str(end - 10**9 + depth * 10**6),
            "endTimeUnixNano": str(end - depth * 10**6),
            **(
                {
                    "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}],
                    "status": {"code": 2},
                }
                if depth == len(names) - 1
                else {}
            ),
        }
        for depth, name in enumerate(names)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "customer-support-agent-service"}}]}
    body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    assert httpx.post(f"{base}/v1/traces", json=body).status_code == 200
    page = browser_page
    page.set_viewport_size({"width": 1100, "height": 800})
    page.goto(f"{base}/traces/{TRACE_ID}#{len(names):016x}")  # the failed call's panel open
    panel = page.locator("#span-panel")
    expect(panel.locator("h2")).to_have_text("chat gpt-4o")
    expect(panel.locator(".genai-facts")).to_contain_text("Input tokens\u2014")
    for name in names:
        label = page.locator(".label .name", has_text=name).first
        expect(label).to_be_visible()
        assert label.evaluate("node => node.scrollWidth <= node.clientWidth"), f"{name!r} is cut"


def test_gateway_pages_keep_their_state_in_the_url(base: str, browser_page: Any) -> None:
    """The usage window (the API's ``window_seconds``) and the playground's endpoint survive Back,
    reload and a pasted link."""
    from playwright.sync_api import expect

    api = httpx.Client(base_url=f"{base}/api/gateway")
    api.post("/secrets", json={"name": "key", "api_key": "sk-0123456789", "base_url": "http://127.0.0.1:9/v1"})
    api.post("/models", json={"name": "m", "provider": "openai", "model": "gpt-4o-mini", "secret": "key"})
    for name in ("chat", "support"):
        api.post("/endpoints", json={"name": name, "models": [{"model": "m"}]}).raise_for_status()
    page = browser_page
    page.goto(f"{base}/gateway/usage")
    window = page.locator("#gw-window")
    expect(window).to_have_value("3600")
    window.select_option("86400")
    expect(page).to_have_url(f"{base}/gateway/usage?window_seconds=86400")
    page.reload()
    expect(window).to_have_value("86400")
    page.go_back()
    expect(page).to_have_url(f"{base}/gateway/usage")
    expect(window).to_have_value("3600")
    page.goto(f"{base}/gateway/usage?window_seconds=900")  # a pasted link
    expect(window).to_have_value("900")

    page.goto(f"{base}/gateway/playground")
    endpoint = page.locator("#gw-endpoint")
    expect(endpoint).to_have_value("chat")
    endpoint.select_option("support")
    expect(page).to_have_url(f"{base}/gateway/playground?endpoint=support")
    page.reload()
    expect(endpoint).to_have_value("support")

    page.goto(f"{base}/gateway/endpoints")
    row = page.locator("tr[data-name='support']")
    expect(row.get_by_role("button", name="Delete")).to_have_class(re.compile(r"\bdanger\b"))  # destructive
    row.get_by_role("button", name="Edit").click()
    expect(page).to_have_url(f"{base}/gateway/endpoints?edit=support")
    page.reload()  # the form opens again on the same endpoint
    expect(page.locator("#gw-form-title")).to_have_text("Edit endpoint support")
    page.locator("#gw-cancel").click()
    expect(page).to_have_url(f"{base}/gateway/endpoints")
