"""Gateway calls with accounts on, through the ``openai`` and ``anthropic`` SDKs with a plughost key as their
``api_key`` (the Anthropic SDK sends it as ``x-api-key``), against llmock as the provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from click.testing import CliRunner

from core import hookimpl
from core.cli import build_cli
from core.testing import serve_in_thread

KEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PROVIDER_KEY = "sk-provider-secret-0123456789"


class Listener:
    """A plugin told of each gateway call (``plughost_gateway_call``)."""

    PLUGHOST_NAME = "listener"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl(optionalhook=True)
    def plughost_gateway_call(self, call: dict[str, Any]) -> None:
        self.calls.append(call)


class Gateway:
    def __init__(self, url: str, env: dict[str, str], listener: Listener) -> None:
        self.url = url
        self.env = env
        self.listener = listener

    def key(self, name: str, role: str, workspace: str | None = "team-a", *options: str) -> str:
        args = ["keys", "add", name, "--role", role, *(["--workspace", workspace] if workspace else []), *options]
        result = CliRunner().invoke(build_cli(), args, env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/gateway/v1", api_key=key, max_retries=0)

    def anthropic(self, key: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=f"{self.url}/gateway/anthropic", api_key=key, max_retries=0)


@pytest.fixture
def gateway(
    make_app: Any,
    register_plugin: Any,
    llmock: Any,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Gateway]:
    """A gateway with accounts on, whose admin configured the endpoint ``chat`` in team-a (llmock, OpenAI kind)."""
    monkeypatch.setenv("PLUGHOST_GATEWAY_ALLOW_PRIVATE", "1")
    env = {"PLUGHOST_DATABASE_URL": sqlite_url, "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_SECURITY_AUTH": "users"}
    settings = {"database_url": sqlite_url, "security": {"auth": "users"}, "gateway": {"kek": KEK}}
    listener = register_plugin(Listener())
    with serve_in_thread(make_app(["security", "workspace", "gateway"], settings)) as url:
        gateway = Gateway(url, env, listener)
        admin = gateway.key("team-a-admin", "admin")
        api = httpx.Client(base_url=f"{url}/api/gateway", headers={"Authorization": f"Bearer {admin}"})
        secret = {"name": "openai", "api_key": PROVIDER_KEY, "base_url": llmock.base_url("openai")}
        api.post("/secrets", json=secret).raise_for_status()
        api.post("/models", json={"name": "gpt", "provider": "openai", "model": "gpt-4o", "secret": "openai"})
        api.post("/endpoints", json={"name": "chat", "models": [{"model": "gpt"}]}).raise_for_status()
        yield gateway


def test_the_sdks_call_the_gateway_with_a_plughost_key_and_wrong_keys_get_their_own_errors(gateway: Gateway) -> None:
    editor = gateway.key("app", "editor")
    messages = [{"role": "user", "content": "hello"}]
    answer = gateway.openai(editor).chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].message.content
    chunks = gateway.openai(editor).chat.completions.create(
        model="chat",
        messages=messages,
        stream=True,
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    reply = gateway.anthropic(editor).messages.create(model="chat", max_tokens=50, messages=messages)
    assert reply.content[0].type == "text" and reply.content[0].text
    deadline = time.monotonic() + 30  # events are delivered off the calls' path
    while len(gateway.listener.calls) < 3:
        assert time.monotonic() < deadline, gateway.listener.calls
        time.sleep(0.05)
    assert [call["key"] for call in gateway.listener.calls] == ["app", "app", "app"]

    with pytest.raises(openai.AuthenticationError) as unknown:
        gateway.openai("ph_00000000_" + "z" * 43).chat.completions.create(model="chat", messages=messages)
    assert unknown.value.status_code == 401 and unknown.value.code == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as missing:
        gateway.anthropic("not-a-plughost-key").messages.create(model="chat", max_tokens=5, messages=messages)
    assert missing.value.body["error"]["type"] == "authentication_error"

    viewer = gateway.key("dashboards", "viewer")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        gateway.openai(viewer).chat.completions.create(model="chat", messages=messages)
    assert "needs editor" in refused.value.message
    with pytest.raises(anthropic.PermissionDeniedError):
        gateway.anthropic(viewer).messages.create(model="chat", max_tokens=5, messages=messages)

    other_team = gateway.key("team-b-app", "editor", "team-b")
    with pytest.raises(openai.NotFoundError):  # its own workspace has no endpoint "chat"
        gateway.openai(other_team).chat.completions.create(model="chat", messages=messages)


def test_provider_secrets_are_for_a_workspace_admin_only(gateway: Gateway) -> None:
    editor = gateway.key("app", "editor")
    api = httpx.Client(base_url=f"{gateway.url}/api/gateway", headers={"Authorization": f"Bearer {editor}"})
    assert api.get("/secrets").status_code == 403
    assert api.post("/secrets", json={"name": "x", "api_key": PROVIDER_KEY}).status_code == 403
    assert api.delete("/endpoints/chat").status_code == 403
    assert api.get("/endpoints").status_code == 200
