"""The assistant in Chromium: its panel on otel's trace view (Analyze, Explain streamed with a
follow-up) and the conversations page, with real traces from the OpenTelemetry SDK and an LLM
answer from the gateway's fake provider."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace as otel_trace

from core.testing import serve_in_thread
from plugins.gateway.tests.fake_provider import create_provider

from .otlp import MS, exporting, trace_id_of
from .test_assistant import KEK, export_checkout_trace


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "assistant"])) as url:
        yield url


@contextlib.contextmanager
def serving_with_llm(make_app: Any, model: str, *, default: bool = True) -> Iterator[str]:
    """otel, the assistant and the gateway, whose endpoint "explainer" answers with the fake provider's ``model``
    (the assistant's default endpoint unless ``default`` is false)."""
    provider_app, _ = create_provider()
    with serve_in_thread(provider_app) as provider_url:
        settings = {
            "gateway": {"allow_private": True, "kek": KEK},
            "assistant": {"endpoint": "explainer" if default else None},
        }
        with serve_in_thread(make_app(["otel", "assistant", "gateway"], settings)) as url:
            api = httpx.Client(base_url=f"{url}/api/gateway")
            api.post(
                "/secrets", json={"name": "k", "api_key": "sk-test-000000000000", "base_url": f"{provider_url}/v1"}
            ).raise_for_status()
            api.post(
                "/models", json={"name": "m", "provider": "openai", "model": model, "secret": "k"}
            ).raise_for_status()
            api.post("/endpoints", json={"name": "explainer", "models": [{"model": "m"}]}).raise_for_status()
            yield url


@pytest.fixture
def with_llm(make_app: Any) -> Iterator[str]:
    """An LLM that echoes the last question, word by word."""
    with serving_with_llm(make_app, "echo-llm") as url:
        yield url


def test_analyze_marks_the_critical_path_and_lists_findings_and_explain_says_why_it_cannot(
    base: str, browser_page: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    trace_id = export_checkout_trace(base)
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{base}/traces/{trace_id}")
    rows = page.locator("#rows .row")
    expect(rows).to_have_count(10)

    page.get_by_role("button", name="Analyze").click()
    # nothing ran in parallel: one line says so, and no bar is marked (every one would be)
    expect(page.locator("#assistant-critical-path")).to_have_text(
        "Sequential: nothing ran in parallel, so the critical path is the whole trace (100.0 ms)."
    )
    expect(page.locator("#rows .row.assistant-critical")).to_have_count(0)
    expect(page.locator("#assistant-repeats")).to_contain_text("6× SELECT item under GET /checkout")
    expect(page.locator("#assistant-errors")).to_contain_text("charge card: card declined")
    expect(page.locator("#assistant-slow li").first).to_contain_text("POST /payments")

    # A finding opens its span in the trace view; an N+1 marks its repeated calls.
    panel = page.locator("#span-panel")
    page.locator("#assistant-errors a").click()
    expect(panel.get_by_role("heading", name="charge card")).to_be_visible()
    page.locator("#assistant-repeats a").click()
    expect(page.locator("#rows .row.assistant-repeated")).to_have_count(6)
    expect(panel.get_by_role("heading", name="GET /checkout")).to_be_visible()
    page.locator("#assistant-errors a").click()
    page.locator("#span-panel .close").click()
    page.locator("#assistant-errors a").click()  # the same link again still opens the span
    expect(panel.get_by_role("heading", name="charge card")).to_be_visible()
    screenshot(page, "asst-analyze")

    # No gateway here: Explain says so, and the analysis stays.
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#assistant-error")).to_contain_text("Explain failed: 503 no LLM: enable the gateway plugin")
    expect(page.locator("#assistant-error")).to_contain_text("the offline analysis (Analyze) works without an LLM")
    expect(page.get_by_role("button", name="Explain")).to_be_enabled()
    expect(page.locator("#assistant-stop")).to_be_hidden()
    expect(page.locator("#assistant-critical-path")).to_contain_text("Sequential")
    screenshot(page, "asst-no-llm")
    assert dialogs == []


def export_agent_trace(base: str) -> str:
    """An agent, 1 s: the same chat prompt asked twice of gpt-4o (100 + 20 tokens each, 400 ms each)."""
    with exporting(base, "agent") as tracer:
        t0 = time.time_ns()
        root = tracer.start_span("invoke_agent", start_time=t0, attributes={"gen_ai.operation.name": "invoke_agent"})
        inside = otel_trace.set_span_in_context(root)
        for begin in (0, 500):
            call = tracer.start_span(
                "chat gpt-4o",
                context=inside,
                start_time=t0 + begin * MS,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.input.messages": '[{"role":"user","content":"hi"}]',
                    "gen_ai.usage.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 20,
                },
            )
            call.end(end_time=t0 + (begin + 400) * MS)
        root.end(end_time=t0 + 1000 * MS)
        return trace_id_of(root)


def test_analyze_shows_the_llm_calls_at_a_glance(base: str, browser_page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    trace_id = export_agent_trace(base)
    browser_page.goto(f"{base}/traces/{trace_id}")
    browser_page.get_by_role("button", name="Analyze").click()
    genai = browser_page.locator("#assistant-genai")
    expect(genai).to_contain_text("2 LLM calls (gpt-4o): 200 input and 40 output tokens")
    expect(browser_page.locator("#assistant-repeated-prompts")).to_contain_text("2× chat gpt-4o")
    browser_page.locator("#assistant-repeated-prompts").get_by_role("link").click()
    expect(browser_page.locator("#rows .row.assistant-repeated")).to_have_count(2)
    screenshot(browser_page, "asst-genai")


def test_explain_without_an_endpoint_names_the_setting(make_app: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    with serve_in_thread(
        make_app(["otel", "assistant", "gateway"], {"gateway": {"allow_private": True, "kek": KEK}})
    ) as url:
        trace_id = export_checkout_trace(url)
        browser_page.goto(f"{url}/traces/{trace_id}")
        browser_page.get_by_role("button", name="Explain").click()
        expect(browser_page.locator("#assistant-error")).to_contain_text(
            "400 endpoint: name a gateway endpoint, or set PLUGHOST_ASSISTANT_ENDPOINT"
        )
        browser_page.get_by_role("button", name="Analyze").click()
        expect(browser_page.locator("#assistant-repeats")).to_contain_text("6× SELECT item")
        expect(browser_page.locator("#assistant-analysis")).not_to_contain_text("null")  # no LLM calls: no LLM section
        expect(browser_page.locator("#assistant-genai")).to_have_count(0)


def test_explain_through_an_endpoint_chosen_in_the_panel(make_app: Any, browser_page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    with serving_with_llm(make_app, "echo-llm", default=False) as url:
        trace_id = export_checkout_trace(url)
        page = browser_page
        page.goto(f"{url}/traces/{trace_id}")
        expect(page.locator("#assistant-endpoints option")).to_have_count(1)  # the gateway's endpoints are offered
        expect(page.locator("#assistant-endpoints option")).to_have_attribute("value", "explainer")
        page.get_by_role("button", name="Explain").click()
        expect(page.locator("#assistant-error")).to_contain_text("400 endpoint")
        page.get_by_label("Endpoint").fill("explainer")
        page.get_by_role("button", name="Explain").click()
        expect(page.locator("#assistant-transcript .assistant-message.answer").first).to_contain_text("echo-llm: Trace")
        expect(page.locator("#assistant-error")).to_be_hidden()
        screenshot(page, "asst-endpoint")


def test_explain_streams_follow_up_and_the_conversations_page_lists_and_deletes(
    with_llm: str, browser_page: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    trace_id = export_checkout_trace(with_llm)
    page = browser_page
    page.goto(f"{with_llm}/traces/{trace_id}")
    page.get_by_role("button", name="Explain").click()
    answers = page.locator("#assistant-transcript .assistant-message.answer")
    expect(answers).to_have_count(1)
    expect(answers.first).to_contain_text("echo-llm: Trace")
    expect(answers.first).to_contain_text("Why was this request slow, and what failed?")
    expect(page.locator("#assistant-critical-path")).to_contain_text("Sequential")  # the stream's analysis event
    expect(page.locator("#assistant-repeats")).to_contain_text("6× SELECT item")

    page.get_by_label("Follow-up question").fill("and the errors?")
    page.get_by_role("button", name="Ask").click()
    expect(answers).to_have_count(2)
    expect(answers.nth(1)).to_have_text("echo-llm: and the errors?")
    expect(page.locator("#assistant-transcript .assistant-message.user")).to_have_text("and the errors?")
    expect(page.locator("#assistant-stop")).to_be_hidden()
    expect(page.get_by_label("Follow-up question")).to_be_enabled()
    screenshot(page, "asst-explain")

    page.get_by_role("navigation").get_by_role("link", name="Assistant").click()
    listed = page.locator("#conversations tbody tr")
    expect(listed).to_have_count(1)
    expect(listed.get_by_role("link")).to_have_attribute("href", f"/traces/{trace_id}")
    listed.locator("td").first.get_by_role("button").click()
    messages = page.locator("#transcript .assistant-message")
    expect(messages).to_have_count(4)
    expect(messages.nth(3)).to_have_text("echo-llm: and the errors?")
    screenshot(page, "asst-conversations")
    listed.get_by_role("button", name="Delete").click()
    expect(listed).to_have_count(0)
    expect(page.locator("#conversations-empty")).to_be_visible()
    assert httpx.get(f"{with_llm}/api/assistant/conversations").json() == {"conversations": []}
    page.reload()
    expect(page.locator("#conversations-empty")).to_be_visible()


def test_stop_abandons_an_answer_that_has_not_come(make_app: Any, browser_page: Any) -> None:
    from playwright.sync_api import expect

    with serving_with_llm(make_app, "slow") as url:  # the provider waits 2 s before it answers
        trace_id = export_checkout_trace(url)
        page = browser_page
        page.goto(f"{url}/traces/{trace_id}")
        page.get_by_role("button", name="Explain").click()
        expect(page.get_by_role("button", name="Explain")).to_be_disabled()
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#assistant-status")).to_have_text("Stopped.")
        expect(page.locator("#assistant-transcript .answer")).to_have_text(" (stopped)")
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        expect(page.get_by_role("button", name="Explain")).to_be_enabled()
        expect(page.locator("#assistant-error")).to_be_hidden()
        expect(page.locator("#assistant-ask")).to_be_hidden()  # no conversation to follow up


def test_a_parallel_trace_gets_its_critical_path_marked_and_summed_up(base: str, browser_page: Any) -> None:
    """Two calls at once under the root: the longer one is on the critical path, the other is not."""
    from playwright.sync_api import expect

    with exporting(base, "fanout") as tracer:
        root = tracer.start_span("fan out", start_time=10 * MS)
        context = otel_trace.set_span_in_context(root)
        tracer.start_span("slow call", context=context, start_time=11 * MS).end(end_time=90 * MS)
        tracer.start_span("quick call", context=context, start_time=12 * MS).end(end_time=20 * MS)
        root.end(end_time=100 * MS)
    page = browser_page
    page.goto(f"{base}/traces/{trace_id_of(root)}")
    page.get_by_role("button", name="Analyze").click()
    summary = page.locator("#assistant-critical-path")
    expect(summary).to_contain_text("Critical path: 90.0 ms of 90.0 ms in 3 segments (2 spans marked), mostly:")
    expect(page.locator("#assistant-path-contributors li").first).to_have_text("slow call — 87.8% (79.0 ms)")
    expect(page.locator("#rows .row.assistant-critical .name")).to_have_text(["fan out", "slow call"])
