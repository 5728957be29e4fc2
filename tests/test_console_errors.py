"""Errors in words, inside the console: an unknown path, a malformed or unknown job or trace id, an
upper-case trace id (as other tools print them), and a page opened without the token, in Chromium."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.security.tests.test_security import TOKEN

TRACE_ID = "5b8efff798038103d269b633813fc60c"


def otlp_trace() -> dict[str, Any]:
    """OTLP/JSON for one trace of two spans, ended a second ago."""
    end = time.time_ns() - 10**9
    spans = [
        {
            "traceId": TRACE_ID,
            "spanId": f"{index + 1:016x}",
            **({"parentSpanId": f"{1:016x}"} if index else {}),
            "name": "GET /orders" if index == 0 else "db.query",
            "startTimeUnixNano": str(end - 10**8),
            "endTimeUnixNano": str(end - index * 1000),
        }
        for index in range(2)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}


@pytest.fixture
def base(make_app: Callable[..., Any]) -> Iterator[str]:
    """A console with the jobs and trace pages."""
    with serve_in_thread(make_app(["jobs", "otel", "workspace", "security"])) as url:
        yield url


def test_an_unknown_path_is_a_console_page_with_a_way_back(
    base: str, browser_page: Any, screenshot: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    answer = page.goto(f"{base}/no/such/page")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator("#not-found")).to_contain_text("There is no console page at /no/such/page")
    expect(page.get_by_role("navigation").get_by_role("link", name="Jobs")).to_be_visible()  # the console's bar
    screenshot(page, "not-found")
    page.get_by_role("link", name="Console home").click()
    expect(page).to_have_url(f"{base}/")
    api = httpx.get(f"{base}/api/no-such-route", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json() == {
        "detail": "There is no console page at /api/no-such-route. Pick a page above, or go back to the console home."
    }


def test_malformed_and_unknown_job_and_trace_ids_say_so_in_words(
    base: str, browser_page: Any, screenshot: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    answer = page.goto(f"{base}/jobs/doesnotexist")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="No such job")).to_be_visible()
    expect(page.locator("#not-found")).to_contain_text("There is no job 'doesnotexist'")
    expect(page.locator("body")).not_to_contain_text("String should match pattern")
    expect(page.get_by_role("link", name="All jobs")).to_have_attribute("href", "/jobs")

    page.goto(f"{base}/jobs/{'a' * 32}")  # well formed, but no such job in this workspace
    expect(page.get_by_role("heading", name="No such job")).to_be_visible()
    expect(page.locator("#not-found")).to_contain_text(f"There is no job {'a' * 32} in workspace 'default'")
    screenshot(page, "no-such-job")

    answer = page.goto(f"{base}/traces/not-a-trace")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="No such trace")).to_be_visible()
    page.goto(f"{base}/traces/{'c' * 32}")
    expect(page.get_by_role("heading", name="No such trace")).to_be_visible()
    expect(page.get_by_role("link", name="All traces")).to_have_attribute("href", "/traces")


def test_an_upper_case_trace_id_is_the_same_trace(make_app: Callable[..., Any], browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    upper = TRACE_ID.upper()
    with serve_in_thread(make_app(["otel", "workspace", "security"])) as base:
        assert httpx.post(f"{base}/v1/traces", json=otlp_trace()).status_code == 200
        for path in ("", "/skeleton", "/spans/0000000000000001", "/search?q=db"):
            answer = httpx.get(f"{base}/api/otel/traces/{upper}{path}")
            assert answer.status_code == 200, (path, answer.text)
        assert httpx.get(f"{base}/api/otel/traces/{upper}").json()["trace_id"] == TRACE_ID
        page.goto(f"{base}/traces/{upper}")
        expect(page.locator("#trace-title")).to_have_text("GET /orders")
        expect(page.locator("#trace-facts")).to_contain_text(TRACE_ID)
        assert httpx.delete(f"{base}/api/otel/traces/{upper}").status_code == 204


def test_under_a_token_opening_a_guarded_address_is_a_page_that_says_how_to_give_it(
    make_app: Callable[..., Any], browser_page: Any, screenshot: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with serve_in_thread(make_app(["jobs", "otel", "workspace", "security"], {"security": {"token": TOKEN}})) as base:
        for path in ("/no/such/page", "/api/otel/traces", "/server-info"):
            answer = page.goto(base + path)
            assert answer is not None and answer.status == 401
            assert answer.headers["content-type"].startswith("text/html")
            expect(page.get_by_role("heading", name="Token required")).to_be_visible()
            expect(page.locator("body")).not_to_contain_text('{"detail"')
        screenshot(page, "token-required")
        page.get_by_role("link", name="home page").click()
        expect(page).to_have_url(f"{base}/")
        expect(page.locator("#token-dialog")).to_be_visible()  # the console asks for the token
        api = httpx.get(f"{base}/api/otel/traces")  # an API client still gets JSON
        assert api.status_code == 401 and api.json()["detail"].startswith("missing or wrong bearer token")
