"""Tool loops against llmock (PyPI ``llmock``), a third-party mock of the OpenAI and Anthropic APIs,
as both provider kinds.

llmock's own pytest plugin provides the ``llmock`` fixture: a real server on loopback for the session,
reset for each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.gateway.tests.agent_loops import anthropic_loop, openai_loop, text_of, tool_arguments
from plugins.gateway.tests.kit import API_KEY, KEK

LOOPS = {"openai": openai_loop, "anthropic": anthropic_loop}


@pytest.fixture
def gateway(make_app: Any, llmock: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A gateway allowed to call llmock on loopback (through the environment, as a user would)."""
    monkeypatch.setenv("PLUGHOST_GATEWAY_ALLOW_PRIVATE", "1")
    with serve_in_thread(make_app(["gateway"], {"gateway": {"kek": KEK}})) as url:
        api = httpx.Client(base_url=f"{url}/api/gateway")
        for kind, model in (("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5")):
            api.post(
                "/secrets", json={"name": kind, "api_key": API_KEY, "base_url": llmock.base_url(kind)}
            ).raise_for_status()
            api.post(
                "/models", json={"name": kind, "provider": kind, "model": model, "secret": kind}
            ).raise_for_status()
            api.post("/endpoints", json={"name": f"agent-{kind}", "models": [{"model": kind}]}).raise_for_status()
        yield url


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("provider_kind", ["openai", "anthropic"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_tool_loop_completes_against_llmock(gateway: str, sdk: str, provider_kind: str, stream: bool) -> None:
    first, final = LOOPS[sdk](gateway, f"agent-{provider_kind}", stream)
    assert [set(arguments) for arguments in tool_arguments(first)] == [
        {"city"}
    ]  # llmock calls a tool only when tools arrive
    assert text_of(final)
