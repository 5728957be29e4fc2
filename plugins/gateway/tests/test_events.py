"""``plughost_gateway_call``: one event per LLM call, after its answer, isolated from failing listeners."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest

from core import hookimpl
from core.testing import serve_in_thread
from plugins.gateway.tests.kit import KEK, configure, openai_client
from plugins.gateway.tests.test_tracing import wait_for


class Listener:
    PLUGHOST_NAME = "listener"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl(optionalhook=True)
    def plughost_gateway_call(self, call):  # a plain function: run in a thread
        self.calls.append(call)


class Failing:
    PLUGHOST_NAME = "failing"

    @hookimpl(optionalhook=True)
    async def plughost_gateway_call(self, call):
        raise RuntimeError("metrics backend down")


def test_each_call_is_announced_once_after_its_answer(
    make_app: Any, provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    listener = Listener()
    app = make_app(
        ["gateway", "workspace", listener, Failing()],
        {"gateway": {"allow_private": True, "kek": KEK, "tracing": False}},
    )
    with caplog.at_level(logging.ERROR, logger="plughost.events"), serve_in_thread(app) as base:
        configure(base, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        configure(
            base, provider[0], "down", [("broken", "openai", "fail-500", 1), ("broken-too", "openai", "fail-500", 1)]
        )
        client = openai_client(base)
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "a b c"}])
        chunks = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a b"}], stream=True
        )
        assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="down", messages=[{"role": "user", "content": "x"}])
        wait_for(lambda: len(listener.calls) >= 3)
    unary, streamed, failed = sorted(listener.calls, key=lambda call: (call["endpoint"] == "down", call["streamed"]))
    assert len(listener.calls) == 3
    assert unary["status"] == 200 and unary["streamed"] is False and unary["workspace"] == "default"
    assert (unary["model"], unary["provider"]) == ("gpt", "openai") and unary["input_tokens"] > 0
    assert unary["output_tokens"] > 0 and unary["error"] is None and len(unary["attempts"]) == 1
    assert streamed["status"] == 200 and streamed["streamed"] is True and streamed["model"] == "gpt"
    assert [(a["model"], a["status"]) for a in streamed["attempts"]] == [("gpt", 200)]
    assert failed["status"] >= 500 and failed["error"] and failed["streamed"] is False
    # every model was tried, in fallback order after the one picked by weight
    assert sorted((a["model"], a["status"]) for a in failed["attempts"]) == [("broken", 500), ("broken-too", 500)]
    assert "plughost_gateway_call of plugin 'failing' raised" in caplog.text
    assert all("messages" not in call and "api_key" not in str(call) for call in listener.calls)
