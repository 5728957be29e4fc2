"""The gateway's usage page in Chromium: spend per endpoint and model, spend over time, cost per call, a failed
attempt at its real latency, and charts of points on legible axes. Calls go through the openai SDK to llmock
(a known model, and a private one at its own price) and to the fake provider (a failure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from core.testing import serve_in_thread
from plugins.gateway.tests.kit import API_KEY, KEK
from plugins.gateway.tests.test_tracing import wait_for


@pytest.fixture
def console(make_app: Any, llmock: Any, provider: Any) -> Iterator[str]:
    app = make_app(
        ["gateway", "otel", "jobs", "workspace", "security"], {"gateway": {"allow_private": True, "kek": KEK}}
    )
    with serve_in_thread(app) as base:
        api = httpx.Client(base_url=f"{base}/api/gateway")
        for name, url in (("llmock", llmock.base_url("openai")), ("fake", f"{provider[0]}/v1")):
            api.post("/secrets", json={"name": name, "api_key": API_KEY, "base_url": url}).raise_for_status()
        for name, model, secret, price in (
            ("gpt", "gpt-4o", "llmock", {}),
            ("house", "house-llm-1", "llmock", {"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 6.0}),
            ("flaky", "fail-slow", "fake", {}),
        ):
            api.post(
                "/models", json={"name": name, "provider": "openai", "model": model, "secret": secret, **price}
            ).raise_for_status()
        for endpoint, members in (("support", ["flaky", "gpt"]), ("private", ["house"])):
            members_json = [
                {"model": member, "weight": 1000 if index == 0 else 1} for index, member in enumerate(members)
            ]
            api.post("/endpoints", json={"name": endpoint, "models": members_json}).raise_for_status()
        yield base


def test_usage_shows_spend_and_a_failed_attempts_real_latency(console: str, browser_page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    client = openai.OpenAI(base_url=f"{console}/gateway/v1", api_key="x", max_retries=0)
    for endpoint in ("support", "private", "private"):
        client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "how much is this?"}])
    wait_for(lambda: len(httpx.get(f"{console}/api/gateway/usage").json()) == 4)
    summary = {row["model"]: row for row in httpx.get(f"{console}/api/gateway/usage/summary").json()["models"]}
    assert summary["gpt"]["cost_usd"] and summary["house"]["cost_usd"] and summary["flaky"]["cost_usd"] is None

    page = browser_page
    page.goto(f"{console}/gateway/usage")
    rows = page.locator("#gw-summary tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="flaky").locator("td").nth(8)).to_have_text("—")  # failed: no tokens, no cost
    expect(rows.filter(has_text="house").locator("td").nth(8)).to_have_text(f"${summary['house']['cost_usd']:.6f}")
    expect(rows.filter(has_text="gpt").locator("td").nth(8)).to_have_text(f"${summary['gpt']['cost_usd']:.6f}")
    spend = page.locator("#gw-spend")
    expect(spend.locator("rect.bar:not(.unpriced)")).to_have_count(1)  # every call in the last minute's bin
    total = summary["gpt"]["cost_usd"] + summary["house"]["cost_usd"]
    expect(spend.locator("#gw-spend-total")).to_have_text(f"${total:.6f} in this window")
    chart = page.locator('.gw-chart[data-endpoint="support"]')
    expect(chart.locator("circle.point.failed")).to_have_count(1)
    expect(chart.locator("circle.point.failed title")).to_contain_text("status 500")
    failed_ms = int(chart.locator("circle.point.failed title").text_content().split(": ")[1].split(" ms")[0])
    assert failed_ms >= 300  # the provider took 0.3 s to fail: not 0 ms
    expect(page.locator(".gw-chart polyline")).to_have_count(0)
    calls = page.locator("#gw-calls tbody tr")
    expect(calls).to_have_count(4)
    expect(calls.filter(has_text="flaky").locator("td").nth(10)).to_have_text("—")
    assert_no_overlap(page)
    screenshot(page, "gateway-usage-cost", full_page=True)

    page.get_by_role("navigation", name="Gateway pages").get_by_role("link", name="Models").click()
    listed = page.locator("#gw-list tbody tr")
    expect(listed.filter(has_text="house")).to_contain_text("$2.00 / $6.00")
    expect(listed.filter(has_text="gpt")).to_contain_text("genai-prices")
    screenshot(page, "gateway-models-prices")


def assert_no_overlap(page: Any) -> None:
    """No axis title meets a tick label, in any chart, as laid out by the browser."""
    overlaps = page.evaluate(
        """() => {
          const found = [];
          for (const chart of document.querySelectorAll(".gw-chart svg")) {
            const titles = [...chart.querySelectorAll(".axis-title")].map((t) => t.getBoundingClientRect());
            const ticks = [...chart.querySelectorAll(".tick")].map((t) => t.getBoundingClientRect());
            for (const a of titles) for (const b of ticks) {
              if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) found.push([a.x, b.x]);
            }
          }
          return found;
        }"""
    )
    assert overlaps == []
