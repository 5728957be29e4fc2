"""Fixtures of the gateway's tests: a fake provider and gateways served by a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.testing import serve_in_thread
from plugins.gateway.tests.fake_provider import create_provider
from plugins.gateway.tests.kit import KEK


@pytest.fixture
def provider() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    app, seen = create_provider()
    with serve_in_thread(app) as url:
        yield url, seen


@pytest.fixture
def serve(make_app: Any) -> Any:
    def start(plugins: tuple[str, ...] = ("gateway",), **settings: Any) -> Any:
        gateway = {"allow_private": True, "kek": KEK, **settings}
        return serve_in_thread(make_app(list(plugins), {"gateway": gateway}))

    return start


@pytest.fixture
def base(serve: Any) -> Iterator[str]:
    with serve() as url:
        yield url
