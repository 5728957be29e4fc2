"""The trace list and the sessions pages in Chromium, as a person uses them: sort by clicking column
headers, filter, page, open a trace and come back, reload, paste the link into another browser; click a
point of the duration scatter plot; read a conversation as a thread."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.otel.tests.instrumented import CONVERSATION, QUESTION
from plugins.otel.tests.test_order import export_traces

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "workspace"])) as url:
        yield url


def shown(page: Any) -> list[str]:
    """The trace ids of the listed rows, in order."""
    hrefs = page.locator("#traces tbody a.trace-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return [href.split("/traces/")[1].split("?")[0] for href in hrefs]


def api_durations(base: str, ids: list[str]) -> list[float]:
    """The traces' durations (ms), as the API has them."""
    every = {t["trace_id"]: t["duration_ms"] for t in httpx.get(f"{base}/api/otel/traces").json()["traces"]}
    return [every[trace_id] for trace_id in ids]


def test_sort_filter_and_page_live_in_the_url(
    base: str, browser_page: Any, chromium_browser: Any, screenshot: Any
) -> None:
    from playwright.sync_api import expect

    export_traces(base, 60)
    page = browser_page
    page.goto(f"{base}/traces")
    rows = page.locator("#traces tbody tr")
    expect(rows).to_have_count(50)
    expect(page).to_have_url(f"{base}/traces?workspace=default")
    expect(page.locator("th[data-sort=start_time]")).to_have_attribute("aria-sort", "descending")

    # Sort by duration: the slowest first, then the quickest first; the page shows what the API orders.
    duration = page.locator("th[data-sort=duration]")
    for sort, state in (("-duration", "descending"), ("duration", "ascending")):
        duration.get_by_role("button").click()
        expect(page).to_have_url(f"{base}/traces?sort={sort}&workspace=default")
        expect(duration).to_have_attribute("aria-sort", state)
        expect(page.locator("th[data-sort=start_time]")).to_have_attribute("aria-sort", "none")
        expected = [t["trace_id"] for t in httpx.get(f"{base}/api/otel/traces", params={"sort": sort}).json()["traces"]]
        for index in (0, 49):
            expect(rows.nth(index).locator("a.trace-link")).to_have_attribute(
                "href", f"/traces/{expected[index]}?workspace=default"
            )
        assert shown(page) == expected[:50]
        durations = api_durations(base, shown(page))
        assert durations == sorted(durations, reverse=sort.startswith("-")) and durations[0] != durations[-1]

    # By tokens, most first; then only the traces with an error, still by tokens.
    page.locator("th[data-sort=tokens]").get_by_role("button").click()
    expect(page).to_have_url(f"{base}/traces?sort=-tokens&workspace=default")
    page.get_by_label("Status").select_option("error")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{base}/traces?status=error&sort=-tokens&workspace=default")
    expected = httpx.get(f"{base}/api/otel/traces", params={"status": "error", "sort": "-tokens"}).json()["traces"]
    assert 1 < len(expected) < 50
    expect(rows).to_have_count(len(expected))
    expect(rows.first.locator("a.trace-link")).to_have_attribute(
        "href", f"/traces/{expected[0]['trace_id']}?workspace=default"
    )
    filtered_url = page.url
    screenshot(page, "console-traces-sorted-filtered")

    # Open a trace, then Back: the same filtered, sorted list; "← Traces" leads there too.
    rows.first.locator("a.trace-link").click()
    expect(page).to_have_url(f"{base}/traces/{expected[0]['trace_id']}?workspace=default")
    expect(page.locator("#back-to-list")).to_have_attribute("href", filtered_url.removeprefix(base))
    page.go_back()
    expect(page).to_have_url(filtered_url)
    expect(page.get_by_label("Status")).to_have_value("error")
    expect(rows).to_have_count(len(expected))
    expect(page.locator("th[data-sort=tokens]")).to_have_attribute("aria-sort", "descending")
    page.reload()
    expect(page.get_by_label("Status")).to_have_value("error")
    expect(rows).to_have_count(len(expected))
    expect(rows.first.locator("a.trace-link")).to_have_attribute(
        "href", f"/traces/{expected[0]['trace_id']}?workspace=default"
    )

    # Pages: the second page is in the URL; reload keeps it; Previous and Back return to the first.
    page.goto(f"{base}/traces?sort=spans&workspace=default")
    first_page = page.locator("#traces tbody a.trace-link").first.get_attribute("href")
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"/traces\?sort=spans&page_token=[^&]+&workspace=default$"))
    expect(rows).to_have_count(10)
    second_url = page.url
    page.reload()
    expect(rows).to_have_count(10)
    page.get_by_role("button", name="Previous").click()
    expect(rows).to_have_count(50)
    expect(page.locator("#traces tbody a.trace-link").first).to_have_attribute("href", first_page or "")
    page.go_forward()
    expect(page).to_have_url(second_url)
    expect(rows).to_have_count(10)

    # The link pasted into another browser, whose own workspace is another one: the same list.
    other = chromium_browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        colleague = other.new_page()
        colleague.goto(f"{base}/")
        colleague.evaluate("() => localStorage.setItem('plughost.workspace', 'team-b')")
        colleague.goto(filtered_url)
        expect(colleague.locator("#traces tbody tr")).to_have_count(len(expected))
        expect(colleague.get_by_label("Status")).to_have_value("error")
        expect(colleague.locator("#workspace")).to_have_value("default")
        colleague.goto(second_url)
        expect(colleague.locator("#traces tbody tr")).to_have_count(10)
        expect(colleague.get_by_role("button", name="First page")).to_be_enabled()
    finally:
        other.close()


def test_the_scatter_plot_shows_each_listed_trace_and_opens_it(base: str, browser_page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    export_traces(base, 12)
    listed = httpx.get(f"{base}/api/otel/traces").json()["traces"]
    page = browser_page
    page.goto(f"{base}/traces")
    points = page.locator("#scatter a.point")
    expect(points).to_have_count(12)
    expect(points.first).to_have_attribute("aria-label", re.compile(r" · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))  # its start
    errors = [trace["trace_id"] for trace in listed if trace["error_count"]]
    assert errors
    expect(page.locator("#scatter a.point.error")).to_have_count(len(errors))
    red = page.locator("#scatter a.point.error circle").first.evaluate("circle => getComputedStyle(circle).fill")
    assert red == "rgb(207, 34, 46)"  # --error
    # The slowest trace is the highest point.
    slowest = max(listed, key=lambda trace: trace["duration_ms"])
    heights = page.locator("#scatter a.point circle").evaluate_all(
        "circles => circles.map(c => [c.parentNode.dataset.traceId, Number(c.getAttribute('cy'))])"
    )
    assert min(heights, key=lambda pair: pair[1])[0] == slowest["trace_id"]
    screenshot(page, "console-traces-scatter")
    page.locator(f"#scatter a.point[data-trace-id='{errors[0]}']").click()
    expect(page).to_have_url(f"{base}/traces/{errors[0]}?workspace=default")
    expect(page.locator("#rows .row.error").first).to_be_visible()


def test_a_session_reads_as_a_thread(base: str, browser_page: Any, llmock: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    subprocess.run(
        [
            sys.executable,
            "-m",
            "plugins.otel.tests.instrumented",
            "openinference",
            base,
            llmock.base_url("openai"),
            "support-chat-1",
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    page = browser_page
    page.goto(f"{base}/")
    page.get_by_role("navigation").get_by_role("link", name="Sessions").click()
    expect(page).to_have_url(f"{base}/sessions?workspace=default")
    row = page.locator("#sessions tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text(str(len(CONVERSATION)))
    expect(row.locator("td.cost")).to_have_text(re.compile(r"^\$\d"))  # the model is priced
    screenshot(page, "console-sessions")
    row.get_by_role("link", name="support-chat-1").click()

    expect(page).to_have_url(f"{base}/sessions/support-chat-1?workspace=default")
    expect(page.locator("#session-title")).to_have_text("Session support-chat-1")
    expect(page.locator("#session-facts .cost")).to_have_text(re.compile(r"^\$\d"))
    expect(page.locator("#session-facts")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.* – \d{4}-"))
    turns = page.locator("#thread .turn")
    expect(turns).to_have_count(len(CONVERSATION))
    for index, question in enumerate(CONVERSATION):
        expect(turns.nth(index).locator(".role-user .chat-text")).to_have_text(question)
        expect(turns.nth(index).locator(".role-assistant .chat-text")).not_to_be_empty()
    expect(turns.first.locator(".role-assistant .chat-text")).to_contain_text(QUESTION)  # llmock echoes it
    screenshot(page, "console-session-thread")

    turns.nth(1).locator("a.turn-trace").click()
    expect(page).to_have_url(re.compile(r"/traces/[0-9a-f]{32}\?workspace=default$"))
    expect(page.locator("#trace-facts .session-chip")).to_have_text("session support-chat-1")
    screenshot(page, "console-trace-of-a-session")
    page.locator("#trace-facts .session-chip").click()
    expect(page).to_have_url(f"{base}/sessions/support-chat-1?workspace=default")
    page.get_by_role("link", name="its traces in the list").click()
    expect(page.locator("#traces tbody tr")).to_have_count(len(CONVERSATION))
    expect(page.get_by_label("Session")).to_have_value("support-chat-1")
