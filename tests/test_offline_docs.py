"""/docs and /redoc load every asset from this server, never from a CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest


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
