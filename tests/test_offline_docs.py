"""/docs and /redoc load every asset from this server, never from a CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.testing import serve_in_thread


@pytest.fixture
def plughost_app(make_app: Any) -> Any:
    return make_app([])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(client: Any, page: str) -> None:
    html = client.get(page).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    for source in sources:
        assert source.startswith("/"), f"{page} loads {source} from elsewhere"
        if source.startswith("/docs-static/"):
            assert client.get(source).status_code == 200, source
    assert "cdn" not in html.lower()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_fetch_nothing_from_another_origin_in_the_browser(
    plughost_app: Any, browser_page: Any, page: str
) -> None:
    """ReDoc's bundle asks for its logo at cdn.redoc.ly: the page's CSP stops it in the browser."""
    from playwright.sync_api import expect

    fetched: list[str] = []
    stopped: dict[str, str] = {}
    browser_page.on("response", lambda response: fetched.append(response.url))
    browser_page.on("requestfailed", lambda request: stopped.update({request.url: request.failure or ""}))
    with serve_in_thread(plughost_app) as base:
        browser_page.goto(f"{base}{page}")
        expect(browser_page.get_by_text("plughost", exact=False).first).to_be_visible()
        browser_page.wait_for_load_state("networkidle")
    assert fetched and all(url.startswith((base, "blob:")) for url in fetched), fetched
    elsewhere = {url: why for url, why in stopped.items() if not url.startswith((base, "blob:", "data:"))}
    assert all("csp" in why.lower() for why in elsewhere.values()), (
        elsewhere
    )  # blocked by the CSP: never left the browser
