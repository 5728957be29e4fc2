"""The trace pages in Chromium, used as a person would: export real traces with the SDK,
find one in the list, open its waterfall, read a span, fold a subtree, follow a span link; the
``plughost:trace-view`` event other plugins build on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from core.default_wsgi import CONTENT_SECURITY_POLICY
from core.testing import serve_in_thread

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel"])) as url:
        yield url


def export(base: str, service: str, *, linked: Any = None) -> dict[str, Any]:
    """A checkout trace: five queries (an N+1) under ``load-cart``, an LLM call, a failing charge. Returns ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=10)))
    tracer = provider.get_tracer("shop.checkout", "1.2.3")
    links = [Link(linked, {"why": "retry of"})] if linked is not None else []
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER, links=links) as root:
        with tracer.start_as_current_span("load-cart", attributes={"note": SCRIPT}):
            for item in range(5):
                with tracer.start_as_current_span(
                    "db.query", attributes={"db.statement": f"SELECT * FROM items WHERE id = {item}"}
                ):
                    pass
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 48,
            },
        ):
            pass
        with tracer.start_as_current_span("charge") as charge:
            try:
                raise ValueError("card declined")
            except ValueError as error:
                charge.record_exception(error)
                charge.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()
    return {
        "trace_id": format(root.get_span_context().trace_id, "032x"),
        "context": root.get_span_context(),
        "spans": 9,
    }


def test_trace_list_filter_waterfall_span_panel_and_folding(base: str, browser_page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    first = export(base, "checkout")
    second = export(base, "billing", linked=first["context"])
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{base}/")
    page.get_by_role("navigation").get_by_role("link", name="Traces").click()
    rows = page.locator("#traces tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Service").fill("billing")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("POST /checkout")
    expect(rows.first.locator("td").nth(5)).to_have_text("9")  # spans
    expect(rows.first.locator("td").nth(6)).to_have_text("1")  # errors
    expect(rows.first.locator("td").nth(7)).to_have_text("168")  # tokens
    rows.first.get_by_role("link").click()

    expect(page).to_have_url(f"{base}/traces/{second['trace_id']}?workspace=default")
    bars = page.locator("#rows .row .bar")
    expect(bars).to_have_count(second["spans"])
    expect(page.locator("#ticks .tick").first).to_have_text("0")
    expect(page.locator("#rows .row.error")).to_have_count(1)
    expect(page.locator("#rows .row.error")).to_contain_text("charge")
    expect(page.locator("#rows .row .chip.genai")).to_have_text("gpt-4o-mini")

    # The span panel: the attribute holding a script is text, and nothing ran.
    page.locator("#rows .row", has_text="load-cart").locator(".name").click()
    panel = page.locator("#span-panel")
    expect(panel.get_by_role("heading", name="load-cart")).to_be_visible()
    expect(panel.locator(".kv td", has_text=SCRIPT)).to_have_text(SCRIPT)
    page.locator("#rows .row", has_text="charge").locator(".name").click()
    expect(panel.locator(".exception")).to_contain_text("ValueError: card declined")
    expect(panel.locator(".exception pre")).to_contain_text("Traceback")
    page.locator("#rows .row", has_text="chat gpt-4o-mini").locator(".name").click()
    expect(panel.locator(".genai-facts")).to_contain_text("120")
    expect(panel.locator(".genai-facts")).to_contain_text("48")
    # The root's link points at the first trace, which is stored: it is a link to it.
    page.locator("#rows .row", has_text="POST /checkout").locator(".name").click()
    expect(panel.locator(".links a")).to_have_attribute(
        "href", f"/traces/{first['trace_id']}#" + format(first["context"].span_id, "016x")
    )

    # Fold the N+1 subtree: its five queries hide, and come back.
    visible = page.locator("#rows .row:visible")
    expect(visible).to_have_count(9)
    page.locator("#rows .row", has_text="load-cart").locator(".toggle").click()
    expect(visible).to_have_count(4)
    page.locator("#rows .row", has_text="load-cart").locator(".toggle").click()
    expect(visible).to_have_count(9)

    # A link to "#<span id>" opens that span; the page has no assistant of its own.
    charge_id = page.locator("#rows .row", has_text="charge").get_attribute("data-span-id")
    page.evaluate("id => { location.hash = id; }", charge_id)
    expect(panel.get_by_role("heading", name="charge")).to_be_visible()
    expect(page.get_by_role("button", name="Analyze")).to_have_count(0)
    expect(page.locator("#trace-extensions")).to_be_empty()
    screenshot(page, "console-trace")

    assert dialogs == []
    assert (
        httpx.get(f"{base}/traces/{second['trace_id']}").headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    )


def test_trace_view_says_when_the_trace_is_missing(base: str, browser_page: Any) -> None:
    from playwright.sync_api import expect

    browser_page.goto(f"{base}/traces/{'0' * 31}1")
    expect(browser_page.get_by_role("heading", name="No such trace")).to_be_visible()
    expect(browser_page.locator("#not-found")).to_contain_text(f"There is no trace {'0' * 31}1 in workspace 'default'")
    answer = browser_page.goto(f"{base}/traces/not-a-trace")  # in words, not the API's validation problem
    assert answer is not None and answer.status == 404
    expect(browser_page.locator("#not-found")).to_contain_text("a trace id is 32 hexadecimal digits")
    expect(browser_page.locator("body")).not_to_contain_text("String should match pattern")


WATCH = """document.addEventListener("plughost:trace-view", (event) => {
  const { traceId, spans, panel, highlight } = event.detail;
  const charge = spans.find((span) => span.name === "charge");
  window.highlight = highlight;
  window.seen = { traceId, names: spans.map((span) => span.name), panel: panel.id,
                  marked: highlight([charge.span_id, "0000000000000000"], "probe-mark") };
});"""


def test_the_trace_view_event_gives_spans_a_panel_and_highlight(base: str, browser_page: Any) -> None:
    """What a plugin listening for ``plughost:trace-view`` gets, once the waterfall is drawn."""
    from playwright.sync_api import expect

    trace = export(base, "checkout")
    page = browser_page
    page.add_init_script(WATCH)
    page.goto(f"{base}/traces/{trace['trace_id']}")
    expect(page.locator("#rows .row.probe-mark")).to_have_count(1)
    expect(page.locator("#rows .row.probe-mark")).to_contain_text("charge")
    seen = page.evaluate("window.seen")
    assert seen["traceId"] == trace["trace_id"] and seen["panel"] == "trace-extensions" and seen["marked"] == 1
    assert seen["names"][0] == "POST /checkout" and sorted(seen["names"]) == sorted(
        ["POST /checkout", "load-cart", *["db.query"] * 5, "chat gpt-4o-mini", "charge"]
    )
    # Highlighting again moves the mark: the class is cleared from rows not named.
    load_cart = page.locator("#rows .row", has_text="load-cart").get_attribute("data-span-id")
    assert page.evaluate("id => window.highlight([id], 'probe-mark')", load_cart) == 1
    expect(page.locator("#rows .row.probe-mark")).to_have_count(1)
    expect(page.locator("#rows .row.probe-mark")).to_contain_text("load-cart")


PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def test_the_span_panel_shows_an_llm_calls_conversation_as_a_chat(
    base: str, browser_page: Any, screenshot: Any
) -> None:
    """OpenInference's flattened messages, with a system prompt, an image, a tool call and its result, a long answer."""
    from playwright.sync_api import expect

    provider = TracerProvider(resource=Resource.create({"service.name": "chatty"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=10)))
    long_answer = "It is sunny. " * 100
    with provider.get_tracer("app").start_as_current_span(
        "ChatCompletion",
        attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 42,
            "llm.token_count.completion": 7,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "You answer about weather.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.contents.0.message_content.type": "text",
            "llm.input_messages.1.message.contents.0.message_content.text": f"What is this? {SCRIPT}",
            "llm.input_messages.1.message.contents.1.message_content.type": "image",
            "llm.input_messages.1.message.contents.1.message_content.image.image.url": PIXEL,
            "llm.input_messages.2.message.role": "assistant",
            "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "get_weather",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": '{"city": "Paris"}',
            "llm.input_messages.3.message.role": "tool",
            "llm.input_messages.3.message.tool_call_id": "call_1",
            "llm.input_messages.3.message.content": '{"sky": "clear"}',
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": long_answer,
        },
    ) as span:
        pass
    provider.shutdown()
    page = browser_page
    page.goto(f"{base}/traces/{format(span.get_span_context().trace_id, '032x')}")
    page.locator("#rows .row", has_text="ChatCompletion").locator(".name").click()
    chat = page.locator("#span-panel .chat")
    expect(chat.locator(".chat-message")).to_have_count(5)
    expect(chat.locator(".chat-role")).to_have_text(["system", "user", "assistant", "tool", "assistant"])
    expect(chat.locator(".role-user .chat-text")).to_have_text(f"What is this? {SCRIPT}")  # text, not markup
    expect(chat.locator(".role-user img")).to_have_attribute("src", PIXEL)
    assert chat.locator(".role-user img").evaluate("image => image.naturalWidth") == 1  # loaded: the CSP allows data:
    expect(chat.locator(".chat-tool-call")).to_contain_text("get_weather")
    expect(chat.locator(".chat-tool-call .chat-code")).to_contain_text('"city": "Paris"')
    expect(chat.locator(".chat-tool-result")).to_contain_text('"sky": "clear"')
    folded = chat.locator("details.folded")
    expect(folded).to_have_count(1)
    expect(folded.locator("summary")).to_contain_text("characters")
    expect(page.locator("#span-panel .genai-facts")).to_contain_text("gpt-4o")
    expect(page.locator("#span-panel .genai-facts")).to_contain_text("42")
    screenshot(page, "console-chat")
