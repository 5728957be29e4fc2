"""Gateway keys with limits, through the ``openai`` and ``anthropic`` SDKs against llmock: calls per minute
held exactly by two server processes sharing PostgreSQL, or Redis; tokens per minute; budgets; endpoint
allow-lists; and the usage each key made."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from click.testing import CliRunner

from core.cli import build_cli
from core.testing import serve_in_thread
from tests.servers import running_server

KEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PROVIDER_KEY = "sk-provider-secret-0123456789"
REDIS_URL = "redis://127.0.0.1:6379/0"
MESSAGES = [{"role": "user", "content": "hello"}]


def cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def configure(base: str, admin: str, llmock: Any) -> None:
    """The endpoints ``chat`` and ``other`` (llmock, OpenAI kind), as an admin sets them up."""
    api = httpx.Client(base_url=f"{base}/api/gateway", headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    api.post(
        "/secrets", json={"name": "openai", "api_key": PROVIDER_KEY, "base_url": llmock.base_url("openai")}
    ).raise_for_status()
    api.post("/models", json={"name": "gpt", "provider": "openai", "model": "gpt-4o", "secret": "openai"})
    for endpoint in ("chat", "other"):
        api.post("/endpoints", json={"name": endpoint, "models": [{"model": "gpt"}]}).raise_for_status()


def openai_client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/gateway/v1", api_key=key, max_retries=0)


def away_from_a_minute_boundary() -> None:
    """Limits count per calendar minute: start a burst early in one, so that it does not straddle two."""
    if time.time() % 60 > 40:
        time.sleep(61 - time.time() % 60)


def redis_available() -> None:
    """Under CI a missing Redis is a failure (``.ci/run`` starts it); on a laptop the test is skipped."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as error:
        message = f"Redis at 127.0.0.1:6379 is not available ({error})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["postgresql", "redis"])
def two_servers(
    request: pytest.FixtureRequest, postgresql_url: str, tmp_path: Path, llmock: Any
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Two ``python -m core serve`` processes on one PostgreSQL database, counting in it or in Redis:
    their base URLs, and the environment the CLI manages their accounts with."""
    if request.param == "redis":
        redis_available()
    env = {
        "PLUGHOST_DATABASE_URL": postgresql_url,
        "PLUGHOST_DATA_DIR": str(tmp_path / "data"),
        "PLUGHOST_PLUGINS": "security,workspace,gateway",
        "PLUGHOST_SECURITY_AUTH": "users",
        "PLUGHOST_GATEWAY_KEK": KEK,
        "PLUGHOST_GATEWAY_ALLOW_PRIVATE": "1",
        **({"PLUGHOST_REDIS_URL": REDIS_URL} if request.param == "redis" else {}),
    }
    admin = cli(env, "keys", "add", "admin", "--role", "admin")
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(env=env)) for _ in range(2)]
        configure(bases[0], admin, llmock)
        yield bases, env


def test_a_key_with_rpm_10_gets_exactly_10_of_16_calls_over_two_processes(
    two_servers: tuple[list[str], dict[str, str]],
) -> None:
    bases, env = two_servers
    name = f"limited-{uuid.uuid4().hex[:8]}"  # Redis outlives the test: a name of its own
    key = cli(env, "keys", "add", name, "--role", "editor", "--rpm", "10")
    away_from_a_minute_boundary()
    answered, limited = [], []
    for call in range(16):
        try:
            client = openai_client(bases[call % 2], key)
            answered.append(client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES))
        except openai.RateLimitError as error:
            limited.append(error)
    assert (len(answered), len(limited)) == (10, 6)
    remaining = [int(answer.headers["x-ratelimit-remaining-requests"]) for answer in answered]
    assert remaining == list(range(9, -1, -1))  # one count across both processes
    headers = limited[0].response.headers
    assert 0 < int(headers["retry-after"]) <= 61
    assert headers["x-ratelimit-limit-requests"] == "10" and headers["x-ratelimit-remaining-requests"] == "0"
    assert limited[0].code == "rate_limit_exceeded" and "10 calls this minute" in limited[0].message

    keys = httpx.get(f"{bases[1]}/api/security/keys", headers={"Authorization": f"Bearer {key}"})
    assert keys.status_code == 200  # an editor sees no keys, but may ask
    admin = cli(env, "keys", "add", f"auditor-{name}", "--role", "admin")
    listed = httpx.get(f"{bases[1]}/api/security/keys", headers={"Authorization": f"Bearer {admin}"}).json()["keys"]
    (usage,) = [entry["usage"] for entry in listed if entry["name"] == name]
    assert usage["calls"] == 10 and usage["refused"] == 6 and usage["tokens"] > 0

    # the gateway's usage per key, as either process serves it: its calls, tokens and spend, and its 429s
    deadline = time.monotonic() + 30
    while (per_key := key_usage(bases[0], admin, name))["refused"]["requests"] < 6 or per_key["calls"] < 10:
        assert time.monotonic() < deadline, per_key
        time.sleep(0.1)
    assert per_key == key_usage(bases[1], admin, name)
    assert (per_key["calls"], per_key["errors"], per_key["refused"]) == (
        10,
        0,
        {"requests": 6, "tokens": 0, "budget": 0, "endpoint": 0},
    )
    assert per_key["input_tokens"] > 0 and per_key["output_tokens"] > 0 and per_key["cost_usd"] > 0
    recent = httpx.get(
        f"{bases[1]}/api/gateway/usage", params={"key": name}, headers={"Authorization": f"Bearer {admin}"}
    ).json()
    assert len(recent) == 10 and {row["key_name"] for row in recent} == {name}

    cli(env, "keys", "delete", name)  # its counters go with it: a new key of that name starts afresh
    again = cli(env, "keys", "add", name, "--role", "editor", "--rpm", "10")
    openai_client(bases[0], again).chat.completions.create(model="chat", messages=MESSAGES)
    listed = httpx.get(f"{bases[1]}/api/security/keys", headers={"Authorization": f"Bearer {admin}"}).json()["keys"]
    assert [entry["usage"]["calls"] for entry in listed if entry["name"] == name] == [1]


def key_usage(base: str, admin: str, name: str) -> dict[str, Any]:
    """The gateway's usage of key ``name`` over the last hour (``GET /api/gateway/usage/keys``)."""
    answer = httpx.get(f"{base}/api/gateway/usage/keys", headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200, answer.text
    found = [entry for entry in answer.json()["keys"] if entry["key"] == name]
    return found[0] if found else {"calls": 0, "refused": {"requests": 0}}


def test_a_spent_budget_is_refused_on_both_processes_in_each_clients_format(
    two_servers: tuple[list[str], dict[str, str]],
) -> None:
    bases, env = two_servers
    name = f"budget-{uuid.uuid4().hex[:8]}"
    key = cli(env, "keys", "add", name, "--role", "editor", "--budget-usd", "0.000001", "--budget-period", "day")
    openai_client(bases[0], key).chat.completions.create(model="chat", messages=MESSAGES)  # spends it
    for base in bases:
        with pytest.raises(openai.RateLimitError) as refused:
            openai_client(base, key).chat.completions.create(model="chat", messages=MESSAGES)
        assert refused.value.code == "budget_exceeded" and refused.value.type == "budget_exceeded"
        client = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key=key, max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as refused_too:
            client.messages.create(model="chat", max_tokens=5, messages=MESSAGES)
        assert refused_too.value.body["error"]["type"] == "budget_exceeded"


@pytest.fixture
def gateway(make_app: Any, llmock: Any, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PLUGHOST_GATEWAY_ALLOW_PRIVATE", "1")
    env = {"PLUGHOST_DATABASE_URL": sqlite_url, "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_SECURITY_AUTH": "users"}
    settings = {"database_url": sqlite_url, "security": {"auth": "users"}, "gateway": {"kek": KEK}}
    with serve_in_thread(make_app(["security", "workspace", "gateway"], settings)) as url:
        configure(url, cli(env, "keys", "add", "admin", "--role", "admin"), llmock)
        yield url, env


def test_tokens_per_minute_and_endpoint_allow_lists(gateway: tuple[str, dict[str, str]]) -> None:
    base, env = gateway
    away_from_a_minute_boundary()
    key = cli(env, "keys", "add", "small", "--role", "editor", "--tpm", "5", "--endpoint", "chat")
    client = openai_client(base, key)
    streamed = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    deadline = time.monotonic() + 30  # the stream's tokens are counted once it ended
    while True:
        try:
            client.chat.completions.create(model="chat", messages=MESSAGES)
        except openai.RateLimitError as error:
            assert error.response.headers["x-ratelimit-limit-tokens"] == "5"
            assert error.response.headers["x-ratelimit-remaining-tokens"] == "0"
            assert "5 tokens per minute" in error.message
            break
        assert time.monotonic() < deadline, "the tokens per minute were never reached"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="other", messages=MESSAGES)
    assert "may call only the endpoints chat" in refused.value.message
    native = httpx.post(
        f"{base}/gateway/other/invocations", json={"messages": MESSAGES}, headers={"Authorization": f"Bearer {key}"}
    )
    assert native.status_code == 403


def test_a_budget_counts_the_price_the_console_shows_a_gateway_models_own(gateway: tuple[str, dict[str, str]]) -> None:
    """A private model genai-prices does not know, priced by its gateway model: its calls spend the budget."""
    base, env = gateway
    admin = {"Authorization": f"Bearer {cli(env, 'keys', 'add', 'pricing-admin', '--role', 'admin')}"}
    api = httpx.Client(base_url=f"{base}/api/gateway", headers=admin, timeout=30)
    own_price = {"input_cost_per_mtok": 1_000_000, "output_cost_per_mtok": 2_000_000}  # $1 and $2 a token
    house = {"name": "house", "provider": "openai", "model": "house-model-7", "secret": "openai", **own_price}
    api.post("/models", json=house).raise_for_status()
    api.post("/endpoints", json={"name": "house", "models": [{"model": "house"}]}).raise_for_status()
    key = cli(env, "keys", "add", "house-budget", "--role", "editor", "--budget-usd", "2", "--budget-period", "day")
    client = openai_client(base, key)
    answer = client.chat.completions.create(model="house", messages=MESSAGES)
    assert answer.usage is not None
    expected = answer.usage.prompt_tokens * 1.0 + answer.usage.completion_tokens * 2.0
    assert expected > 2
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="house", messages=MESSAGES)
    assert refused.value.code == "budget_exceeded" and f"(${expected:g})" in refused.value.message

    deadline = time.monotonic() + 30
    while not (recorded := api.get("/usage", params={"key": "house-budget"}).json()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert recorded[0]["cost_usd"] == pytest.approx(expected)  # the console's cost of the call
    listed = httpx.get(f"{base}/api/security/keys", headers=admin).json()["keys"]
    assert [entry["usage"]["spend_usd"] for entry in listed if entry["name"] == "house-budget"] == [
        pytest.approx(expected)
    ]
