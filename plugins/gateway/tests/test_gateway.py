"""The gateway through a real server, driven by the official openai and anthropic SDKs, against a fake provider."""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from core.testing import assert_plugin_contract, serve_in_thread
from plugins.gateway.tests.kit import API_KEY, KEK, configure, openai_client


def test_openai_sdk_unary_stream_models_and_embeddings(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "chat", [("gpt", "openai", "echo-gpt", 1)])
    client = openai_client(base)
    answer = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello there"}])
    assert answer.choices[0].message.content == "echo-gpt: hello there"
    assert answer.model == "echo-gpt" and answer.usage.completion_tokens == 3  # the answer is the provider's, unchanged
    assert seen[-1]["headers"]["authorization"] == f"Bearer {API_KEY}"  # the stored key goes to the provider
    pieces = [
        chunk.choices[0].delta.content
        for chunk in client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
        if chunk.choices and chunk.choices[0].delta.content
    ]
    assert "".join(pieces) == "echo-gpt: stream me" and len(pieces) == 3
    assert [m.id for m in client.models.list()] == ["chat"]
    vectors = client.embeddings.create(model="chat", input=["a", "abc"])
    assert [v.embedding[0] for v in vectors.data] == [1.0, 3.0]


def test_anthropic_sdk_unary_and_stream_through_either_provider(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "claude", [("sonnet", "anthropic", "echo-claude", 1)])
    configure(base, provider_url, "via-openai", [("gpt", "openai", "echo-gpt", 1)])
    client = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key="unused", max_retries=0)
    message = client.messages.create(
        model="claude", max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "echo-claude: hi" and message.stop_reason == "end_turn"
    assert seen[-1]["headers"]["x-api-key"] == API_KEY and seen[-1]["body"]["system"] == "be brief"
    with client.messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "stream"}]
    ) as stream:
        assert "".join(stream.text_stream) == "echo-claude: stream"
        assert stream.get_final_message().usage.output_tokens == 2
    translated = client.messages.create(
        model="via-openai", max_tokens=64, messages=[{"role": "user", "content": "cross"}]
    )
    assert translated.content[0].text == "echo-gpt: cross"  # an Anthropic client served by an OpenAI provider
    openai_answer = openai_client(base).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "back"}]
    )
    assert openai_answer.choices[0].message.content == "echo-claude: back"


def test_native_invocations_route_unary_and_sse(base: str, provider: Any) -> None:
    configure(base, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    unary = httpx.post(f"{base}/gateway/chat/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert unary.json()["choices"][0]["message"]["content"] == "echo-gpt: x"
    with httpx.stream(
        "POST",
        f"{base}/gateway/chat/invocations",
        json={"messages": [{"role": "user", "content": "y z"}], "stream": True},
    ) as response:
        body = response.read().decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert body.rstrip().endswith("data: [DONE]") and "echo-gpt:" in body


def test_errors_before_the_stream_map_to_status_codes(base: str, provider: Any) -> None:
    configure(base, provider[0], "limited", [("limited", "openai", "rate-limited", 1)])
    configure(base, provider[0], "broken", [("broken", "openai", "fail-500", 1)])
    configure(base, provider[0], "picky", [("picky", "openai", "bad-request", 1)])
    client = openai_client(base)
    with pytest.raises(openai.NotFoundError, match="no endpoint 'nope'"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="limited", messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.InternalServerError) as broken:
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}], stream=True)
    assert broken.value.status_code == 502
    with pytest.raises(openai.BadRequestError, match="temperature too hot"):
        client.chat.completions.create(model="picky", messages=[{"role": "user", "content": "x"}])
    bad_json = httpx.post(
        f"{base}/gateway/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    no_messages = httpx.post(f"{base}/gateway/broken/invocations", json={"messages": []})
    assert no_messages.status_code == 400 and "messages" in no_messages.json()["error"]["message"]


def test_timeout_is_504(serve: Any, provider: Any) -> None:
    with serve(timeout_seconds=0.5) as url:
        configure(url, provider[0], "sleepy", [("sleepy", "openai", "slow", 1)])
        response = httpx.post(
            f"{url}/gateway/sleepy/invocations", json={"messages": [{"role": "user", "content": "x"}]}
        )
    assert response.status_code == 504 and "did not answer in time" in response.json()["error"]["message"]


def test_fallback_to_the_next_model_on_5xx(base: str, provider: Any) -> None:
    configure(
        base,
        provider[0],
        "resilient",
        [("primary", "openai", "fail-500", 1), ("backup", "anthropic", "echo-backup", 1)],
    )
    answers = {
        openai_client(base)
        .chat.completions.create(model="resilient", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .message.content
        for _ in range(6)
    }
    assert answers == {"echo-backup: x"}
    streamed = openai_client(base).chat.completions.create(
        model="resilient", messages=[{"role": "user", "content": "s"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "echo-backup: s"


def test_traffic_split_follows_the_weights(base: str, provider: Any) -> None:
    configure(base, provider[0], "split", [("heavy", "openai", "echo-heavy", 3), ("light", "openai", "echo-light", 1)])
    client = openai_client(base)
    picks = Counter(
        client.chat.completions.create(model="split", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .message.content
        for _ in range(200)
    )
    assert set(picks) == {"echo-heavy: x", "echo-light: x"}
    assert 115 <= picks["echo-heavy: x"] <= 185  # 150 expected; beyond 5 standard deviations otherwise


def test_a_cut_off_stream_is_reported_not_passed_off_as_complete(base: str, provider: Any) -> None:
    configure(base, provider[0], "flaky", [("flaky", "openai", "cut", 1)])
    configure(base, provider[0], "flaky-claude", [("flaky-claude", "anthropic", "cut", 1)])
    with httpx.stream(
        "POST",
        f"{base}/gateway/flaky/invocations",
        json={"messages": [{"role": "user", "content": "a b c d"}], "stream": True},
    ) as response:
        body = response.read().decode()
    assert "data: [DONE]" not in body
    assert re.search(r"event: error\ndata: .*truncated", body)
    with pytest.raises(openai.APIError, match="truncated"):
        for _ in openai_client(base).chat.completions.create(
            model="flaky", messages=[{"role": "user", "content": "a b c"}], stream=True
        ):
            pass
    client = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key="unused", max_retries=0)
    with (
        pytest.raises(anthropic.APIError, match="truncated"),
        client.messages.stream(
            model="flaky-claude", max_tokens=9, messages=[{"role": "user", "content": "a b c"}]
        ) as stream,
    ):
        "".join(stream.text_stream)


def test_secrets_are_encrypted_never_returned_and_never_logged(
    serve: Any, provider: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), serve() as url:
        configure(url, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        shown = httpx.get(f"{url}/api/gateway/secrets").json()
        assert shown[0]["key_hint"] == "sk-…6789" and API_KEY not in str(shown)
        assert API_KEY not in httpx.get(f"{url}/api/gateway/secrets/openai-key").text
        openai_client(url).chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
        bad = httpx.post(f"{url}/api/gateway/secrets", json={"name": "BAD NAME", "api_key": API_KEY})
        assert bad.status_code == 422 and API_KEY not in bad.text
    assert API_KEY not in caplog.text
    database = (tmp_path / "plughost-data" / "plughost.db").read_bytes()
    wal = tmp_path / "plughost-data" / "plughost.db-wal"
    assert API_KEY.encode() not in database + (wal.read_bytes() if wal.exists() else b"")


def test_without_a_kek_a_private_key_file_is_made_and_a_changed_kek_is_reported(
    make_app: Any, provider: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"gateway": {"allow_private": True}}
    with caplog.at_level(logging.WARNING), serve_in_thread(make_app(["gateway"], settings)) as url:
        configure(url, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    assert "PLUGHOST_GATEWAY_KEK is not set" in caplog.text
    key_file = tmp_path / "plughost-data" / "gateway-kek"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.write_bytes(os.urandom(32))  # the key is lost or replaced
    with serve_in_thread(make_app(["gateway"], settings)) as url:
        response = httpx.post(f"{url}/gateway/chat/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 500
    assert "was sealed with another key-encryption key" in response.json()["error"]["message"]


def test_base_urls_into_private_networks_are_refused(serve: Any) -> None:
    with serve(allow_private=False) as url:
        for target, says in (
            ("http://api.example.com/v1", "must use https"),
            ("https://127.0.0.1/v1", "non-public address"),
            ("https://10.1.2.3/v1", "non-public address"),
            ("https://[::1]/v1", "non-public address"),
            ("https://169.254.169.254/latest", "non-public address"),
            ("ftp://x", "absolute https URL"),
        ):
            response = httpx.post(
                f"{url}/api/gateway/secrets", json={"name": "k", "api_key": API_KEY, "base_url": target}
            )
            assert response.status_code == 400 and says in response.json()["detail"], target


def test_configuration_rules(base: str, provider: Any) -> None:
    api = httpx.Client(base_url=f"{base}/api/gateway")
    configure(base, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    assert api.post("/secrets", json={"name": "openai-key", "api_key": API_KEY}).status_code == 409
    assert (
        api.post("/models", json={"name": "m2", "provider": "openai", "model": "x", "secret": "missing"}).status_code
        == 400
    )
    assert (
        api.post(
            "/models", json={"name": "m2", "provider": "mystery", "model": "x", "secret": "openai-key"}
        ).status_code
        == 422
    )
    assert api.post("/endpoints", json={"name": "e2", "models": [{"model": "missing"}]}).status_code == 400
    assert api.post("/endpoints", json={"name": "e2", "models": []}).status_code == 422
    assert api.delete("/secrets/openai-key").status_code == 409  # used by model gpt
    assert api.delete("/models/gpt").status_code == 409  # used by endpoint chat
    assert (
        api.put(
            "/secrets/openai-key", json={"api_key": "sk-rotated-key-000000000", "base_url": f"{provider[0]}/v1"}
        ).json()["key_hint"]
        == "sk-…0000"
    )
    assert (
        openai_client(base)
        .chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .message.content
    )
    assert provider[1][-1]["headers"]["authorization"] == "Bearer sk-rotated-key-000000000"
    assert api.delete("/endpoints/chat").status_code == 204 and api.get("/endpoints/chat").status_code == 404
    assert api.delete("/models/gpt").status_code == 204 and api.delete("/secrets/openai-key").status_code == 204


def test_usage_is_recorded_per_call(base: str, provider: Any) -> None:
    configure(base, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
    client = openai_client(base)
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "one two"}])
    list(client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "three"}], stream=True))
    for _ in range(100):  # records are written in batches, within a second
        records = httpx.get(f"{base}/api/gateway/usage").json()
        if len(records) == 2:
            break
        time.sleep(0.05)
    assert [(r["model"], r["status"], r["streamed"], r["completion_tokens"]) for r in records] == [
        ("gpt", 200, True, 2),
        ("gpt", 200, False, 3),
    ]


def test_workspaces_keep_their_own_configuration(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "workspace")) as url:
        configure(
            url, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)], headers={"X-Plughost-Workspace": "team-a"}
        )
        team_b = openai.OpenAI(
            base_url=f"{url}/gateway/v1", api_key="x", max_retries=0, default_headers={"X-Plughost-Workspace": "team-b"}
        )
        with pytest.raises(openai.NotFoundError):
            team_b.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
        assert httpx.get(f"{url}/api/gateway/endpoints", headers={"X-Plughost-Workspace": "team-b"}).json() == []


def test_timing_headers_report_the_gateway_overhead(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "timing")) as url:
        configure(url, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        response = httpx.post(f"{url}/gateway/chat/invocations", json={"messages": [{"role": "user", "content": "x"}]})
        assert "provider;dur=" in response.headers["server-timing"]
        assert float(response.headers["x-plughost-overhead-ms"]) < float(response.headers["x-plughost-duration-ms"])
        with httpx.stream(
            "POST",
            f"{url}/gateway/chat/invocations",
            json={"messages": [{"role": "user", "content": "x"}], "stream": True},
        ) as streamed:
            body = streamed.read().decode()
        assert re.search(r"^: server-timing app;dur=[\d.]+, provider;dur=[\d.]+, overhead;dur=[\d.]+$", body, re.M)


def test_a_cross_site_post_cannot_spend_the_keys_with_security_on(serve: Any, provider: Any) -> None:
    with serve(plugins=("gateway", "security")) as url:
        configure(url, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        calls = len(provider[1])
        attack = httpx.post(
            f"{url}/gateway/chat/invocations",
            content='{"messages":[{"role":"user","content":"x"}]}',
            headers={"Origin": "https://attacker.example", "Content-Type": "text/plain"},
        )
        assert attack.status_code == 403 and len(provider[1]) == calls


def test_keeps_the_plugin_contract() -> None:
    import plugins.gateway

    assert_plugin_contract(plugins.gateway, settings={"gateway": {"kek": KEK}})


def test_deeply_nested_json_is_a_400_on_every_json_route(base: str) -> None:
    for path in (
        "/gateway/chat/invocations",
        "/gateway/v1/chat/completions",
        "/gateway/anthropic/v1/messages",
        "/gateway/v1/embeddings",
    ):
        response = httpx.post(f"{base}{path}", content=b"[" * 100_000, headers={"content-type": "application/json"})
        assert response.status_code == 400 and "nest" in response.text, path
