"""Cost in the trace pages, in Chromium: the list's Cost column, an LLM row's tokens and cost in the waterfall,
the span panel's cost, and "—" where no price is known. Traces come from the OpenTelemetry SDK's exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.otel.tests.test_cost import GPT_4O, OPENINFERENCE_MINI, UNKNOWN, listed, send


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel"])) as url:
        yield url


def dollars(usd: float) -> str:
    """What the console writes for a cost (format.js)."""
    return f"${usd:.{2 if usd >= 1 else 4 if usd >= 0.01 else 6}f}"


def test_the_list_the_waterfall_and_the_span_panel_show_cost(base: str, browser_page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    send(base, "support-bot", [("chat gpt-4o", GPT_4O), ("ChatCompletion", OPENINFERENCE_MINI), ("chat", UNKNOWN)])
    send(base, "no-llm", [("GET /health", {"http.route": "/health"})])
    priced = listed(base, "support-bot")
    trace = httpx.get(f"{base}/api/otel/traces/{priced['trace_id']}").json()
    costs = {span["name"]: span["genai"]["cost_usd"] for span in trace["spans"] if span["genai"]}
    assert costs["chat"] is None and costs["chat gpt-4o"] and costs["ChatCompletion"]

    page = browser_page
    page.goto(f"{base}/traces")
    header = page.locator("#traces thead th")
    expect(header.nth(8)).to_have_text("Cost")
    row = page.locator("#traces tbody tr", has_text="support-bot")
    expect(row.locator("td").nth(7)).to_have_text(f"{1200 + 300 + 500 + 50 + 10 + 5:,}")
    expect(row.locator("td").nth(8)).to_have_text(dollars(priced["cost_usd"]))
    bare = page.locator("#traces tbody tr", has_text="no-llm")
    expect(bare.locator("td").nth(7)).to_have_text("—")
    expect(bare.locator("td").nth(8)).to_have_text("—")
    screenshot(page, "otel-cost-list")

    row.get_by_role("link").click()
    llm = page.locator("#rows .row", has_text="chat gpt-4o")
    expect(llm.locator(".usage .tokens")).to_have_text("1,500 tok")
    expect(llm.locator(".usage .cost")).to_have_text(dollars(costs["chat gpt-4o"]))
    unknown = page.locator("#rows .row").filter(has=page.locator(".name", has_text="chat")).filter(has_text="15 tok")
    expect(unknown.locator(".usage .cost")).to_have_text("—")
    expect(page.locator("#rows .row", has_text="answer").locator(".usage")).to_have_count(0)  # not an LLM call
    expect(page.locator("#trace-facts .cost")).to_have_text(dollars(priced["cost_usd"]))

    page.locator("#rows .row", has_text="ChatCompletion").locator(".name").click()
    panel = page.locator("#span-panel")
    expect(panel.locator(".genai-facts")).to_contain_text("Cost" + dollars(costs["ChatCompletion"]))
    screenshot(page, "otel-cost-trace")
    unknown.locator(".name").click()
    expect(panel.locator(".genai-facts .cost")).to_have_text("—")
