"""The trace view of a big trace in Chromium: the issue's 5,001-span batch job (50 batches of 99
records, one failing). The waterfall holds only the rows on screen, folds by default to a first
screen that means something, and finds the error, a search match and a moment of the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.testing import batch_span_id, batch_trace, post_otlp, serve_in_thread

TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
TRACE_ID = TRACE.hex()
FAILING = (37, 57)
FAILING_SPAN = batch_span_id(2 + 37 * 100 + 1 + 57)
MOST_ROWS = 80
"""Rows the DOM may hold: what a 900-pixel window shows, plus the margins, whatever the span count."""


@pytest.fixture
def page(make_app: Any, browser_page: Any) -> Iterator[Any]:
    with serve_in_thread(make_app(["otel"])) as base:
        post_otlp(base, batch_trace(TRACE, failing=FAILING))
        browser_page.add_init_script(
            'document.addEventListener("plughost:trace-view", (event) => { window.traceView = event.detail; });'
        )
        browser_page.goto(f"{base}/traces/{TRACE_ID}")
        yield browser_page


def ready(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#waterfall")).to_have_attribute("data-ready", "true", timeout=30_000)


def row_count(page: Any) -> int:
    return int(page.locator("#rows .row").count())


def test_the_waterfall_draws_only_what_is_on_screen(page: Any, screenshot: Any) -> None:
    from playwright.sync_api import expect

    ready(page)
    rows = page.locator("#rows .row")
    # folded by default: the root and its 50 batches, each saying how many spans it hides
    expect(rows.first).to_contain_text("run batch job")
    batch = page.locator("#rows .row", has_text="batch 0").first
    expect(batch.locator(".toggle")).to_have_attribute("aria-expanded", "false")
    expect(batch.locator(".folded-count")).to_have_text("+99")
    assert row_count(page) <= 51
    assert page.evaluate("document.getElementById('rows-sizer').offsetHeight") == 51 * 26

    # unfold every batch (through the page's API for other plugins: revealing a record unfolds
    # its batch): 5,001 rows to scroll through, never more than a screenful in the DOM
    assert page.evaluate("window.traceView.spanCount") == 5001
    first_records = [batch_span_id(2 + batch * 100 + 1) for batch in range(50)]
    assert page.evaluate("ids => ids.every((id) => window.traceView.reveal(id))", first_records)
    assert page.evaluate("document.getElementById('rows-sizer').offsetHeight") == 5001 * 26
    assert row_count(page) <= MOST_ROWS
    page.evaluate("document.getElementById('rows').scrollTop = 1e9")
    expect(page.locator("#rows .row", has_text="run batch job")).to_have_count(0)
    expect(rows.last).to_contain_text("process record")
    assert row_count(page) <= MOST_ROWS
    assert page.evaluate("document.querySelectorAll('*').length") < 2000

    # fold one back: its 99 records go, the rest stay
    page.evaluate("document.getElementById('rows').scrollTop = 0")
    expect(rows.nth(2)).to_contain_text("process record")
    rows.nth(1).locator(".toggle").click()
    expect(rows.nth(2)).to_contain_text("batch 1")
    assert page.evaluate("document.getElementById('rows-sizer').offsetHeight") == (5001 - 99) * 26

    # keyboard: select a row, walk down, fold with the left arrow
    rows.nth(2).locator(".name").click()
    expect(page.locator("#span-panel h2")).to_have_text("batch 1")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#rows .row.selected")).to_contain_text("process record")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#rows .row.selected .folded-count")).to_have_text("+99")
    screenshot(page, "big-trace")


def test_the_error_is_one_click_away(page: Any) -> None:
    from playwright.sync_api import expect

    ready(page)
    errors = page.locator("#trace-errors")
    expect(errors).to_contain_text("1 error")
    errors.get_by_role("link", name="process record (batch-worker)").click()
    selected = page.locator("#rows .row.selected")
    expect(selected).to_have_attribute("data-span-id", FAILING_SPAN)
    expect(selected).to_have_class("row error selected")
    panel = page.locator("#span-panel")
    expect(panel.locator("p.error")).to_have_text("could not parse record rec-37-57")
    expect(panel.locator(".exception")).to_contain_text("ValueError: bad field 'amount'")
    assert page.evaluate("location.hash") == "#" + FAILING_SPAN
    assert row_count(page) <= MOST_ROWS

    # the header's error badge, after a reload (the hash opens the span too)
    page.reload()
    ready(page)
    expect(page.locator("#rows .row.selected")).to_have_attribute("data-span-id", FAILING_SPAN)
    page.locator("#span-panel .close").click()
    expect(page.locator("#rows .row.selected")).to_have_count(0)
    page.locator("#first-error").click()
    expect(page.locator("#rows .row.selected")).to_have_attribute("data-span-id", FAILING_SPAN)


def test_search_and_the_minimap_find_things(page: Any) -> None:
    from playwright.sync_api import expect

    ready(page)
    search = page.get_by_label("Search in this trace")
    count = page.locator("#search-count")
    selected = page.locator("#rows .row.selected")

    # an attribute value: the server finds it
    search.fill("REC-12-77")
    search.press("Enter")
    expect(count).to_have_text("1 of 1")
    expect(selected).to_have_attribute("data-span-id", batch_span_id(2 + 12 * 100 + 1 + 77))
    expect(page.locator("#span-panel")).to_contain_text("rec-12-77")

    # names: batch 4 and batch 40 to 49, next and previous going round
    search.fill("batch 4")
    search.press("Enter")
    expect(count).to_have_text("1 of 11")
    expect(selected.locator(".name")).to_have_text("batch 4")
    page.locator("#search-next").click()
    expect(selected.locator(".name")).to_have_text("batch 40")
    page.locator("#search-previous").click()
    page.locator("#search-previous").click()
    expect(count).to_have_text("11 of 11")
    expect(selected.locator(".name")).to_have_text("batch 49")
    expect(page.locator("#rows .row.match", has_text="batch 45")).to_have_count(1)
    expect(page.locator("#rows .row.match", has_text="batch 39")).to_have_count(0)
    search.fill("no such thing")
    search.press("Enter")
    expect(count).to_have_text("no match")

    # the minimap: the error is marked; a click on it opens the error, a click elsewhere scrolls there
    minimap = page.locator("#minimap")
    expect(minimap).to_have_attribute("data-errors", "1")
    box = minimap.bounding_box()
    error_at = (37 * 100 + 1 + 57) / 5001  # the trace is sequential: time follows the span order
    page.mouse.click(box["x"] + box["width"] * error_at, box["y"] + box["height"] / 2)
    expect(selected).to_have_attribute("data-span-id", FAILING_SPAN)
    page.locator("#span-panel .close").click()
    page.reload()  # folded as at first
    ready(page)
    box = minimap.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    expect(page.locator("#rows .row", has_text="batch 45")).to_be_in_viewport()
    expect(page.locator("#rows .row", has_text="batch 1").first).not_to_be_in_viewport()
