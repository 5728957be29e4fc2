"""The console in Chromium on a server with a token: the page opens, asks for the token when the
API answers 401, asks again for a wrong one, and shows the data once given the right one. The
token travels in the ``Authorization`` header only, never in a URL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.security.tests.test_security import TOKEN


def otlp_trace(service: str) -> dict[str, Any]:
    """OTLP/JSON for one trace of two spans from ``service``, ended a second ago."""
    end = time.time_ns() - 10**9
    spans = [
        {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": f"{index + 1:016x}",
            **({"parentSpanId": f"{1:016x}"} if index else {}),
            "name": "GET /orders" if index == 0 else "db.query",
            "startTimeUnixNano": str(end - 10**8),
            "endTimeUnixNano": str(end - index * 1000),
        }
        for index in range(2)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "workspace", "security"], {"security": {"token": TOKEN}})) as url:
        exported = httpx.post(
            f"{url}/v1/traces", json=otlp_trace("orders"), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert exported.status_code == 200, exported.text
        yield url


def test_the_console_asks_for_the_token_and_then_shows_the_data(base: str, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    dialog = page.locator("#token-dialog")
    rows = page.locator("#traces tbody tr")

    opened = page.goto(f"{base}/traces")
    assert opened is not None and opened.status == 200  # the shell, not a JSON 401
    expect(dialog).to_be_visible()  # the trace list's API call answered 401
    expect(page.locator("#token-refused")).to_be_hidden()  # no token was sent yet
    expect(rows).to_have_count(0)

    page.get_by_label("Token", exact=True).fill("not-the-token-but-long-enough")
    with page.expect_response(lambda response: "/api/otel/traces" in response.url and response.status == 401):
        page.get_by_role("button", name="Use token").click()
    expect(dialog).to_be_visible()  # asked again, saying why
    expect(page.locator("#token-refused")).to_be_visible()
    expect(page.get_by_label("Token", exact=True)).to_have_value("")

    page.get_by_label("Token", exact=True).fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    expect(dialog).to_be_hidden()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("GET /orders")
    expect(rows.first).to_contain_text("orders")

    rows.first.get_by_role("link").click()  # the next page uses the token kept for this tab
    expect(page.locator("#rows .row .bar")).to_have_count(2)
    expect(dialog).to_be_hidden()

    assert TOKEN not in page.url
    api_calls = [request for request in requests if "/api/" in request.url]
    assert api_calls and all(TOKEN not in request.url for request in requests)
    assert api_calls[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_cancelling_the_prompt_shows_the_refusal(base: str, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{base}/traces")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#token-dialog")).to_be_hidden()
    expect(page.locator("#list-error")).to_contain_text("401")
    expect(page.locator("#traces tbody tr")).to_have_count(0)


def test_the_api_docs_page_loads_but_shows_the_schema_only_once_it_is_published(
    make_app: Any, browser_page: Any
) -> None:
    """Swagger UI cannot send the token: under one it reports the 401 of ``/openapi.json`` (README)."""
    from playwright.sync_api import expect

    page = browser_page
    with serve_in_thread(make_app(["security"], {"security": {"token": TOKEN}})) as url:
        opened = page.goto(f"{url}/docs")
        assert opened is not None and opened.status == 200
        expect(page.get_by_text("Failed to load API definition")).to_be_visible()
        expect(page.get_by_text("Unauthorized /openapi.json")).to_be_visible()
    published = {"token": TOKEN, "exempt_paths": ["/health", "/openapi.json"]}
    with serve_in_thread(make_app(["security"], {"security": published})) as url:
        page.goto(f"{url}/docs")
        expect(page.get_by_text("Health", exact=True)).to_be_visible()  # the /health operation, read from the schema
        assert httpx.get(f"{url}/server-info").status_code == 401
