"""Agents through the gateway: tool loops with both SDKs against both provider kinds, lossless
same-format calls, and the cross-format mapping of tools, images, structured output and usage."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from plugins.gateway.tests.agent_loops import anthropic_loop, openai_loop, text_of, tool_arguments
from plugins.gateway.tests.kit import configure

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
LOOPS = {"openai": openai_loop, "anthropic": anthropic_loop}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("provider_kind", ["openai", "anthropic"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_tool_loop_with_parallel_calls_completes(
    base: str, provider: Any, sdk: str, provider_kind: str, stream: bool
) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "agent", [("agent", provider_kind, "tools2-x", 1)])
    first, final = LOOPS[sdk](base, "agent", stream)
    assert tool_arguments(first) == [{"city": "Paris #1"}, {"city": "Paris #2"}]
    assert text_of(final) == "tool results: sunny in Paris #1; sunny in Paris #2"
    tools = seen[-1]["body"]["tools"]  # the tools reached the provider, in its own format
    assert (tools[0]["function"]["name"] if provider_kind == "openai" else tools[0]["name"]) == "get_weather"


def test_same_format_openai_passes_every_field_both_ways(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "rich", [("rich", "openai", "rich-gpt", 1)])
    body = {
        "model": "rich",
        "messages": [{"role": "developer", "content": "terse"}, {"role": "user", "content": "hi", "name": "ann"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}],
        "tool_choice": "none",
        "parallel_tool_calls": False,
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "n": 1,
        "user": "u-1",
        "metadata": {"k": "v"},
        "reasoning_effort": "low",
        "a_field_from_the_future": {"x": [1, 2]},
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
    }
    answer = httpx.post(f"{base}/gateway/v1/chat/completions", json=body)
    assert seen[-1]["body"] == {**body, "model": "rich-gpt"}  # only the model is rewritten
    direct = httpx.post(f"{provider_url}/v1/chat/completions", json={**body, "model": "rich-gpt"})
    assert answer.status_code == 200 and answer.content == direct.content  # the answer, byte for byte
    assert answer.json()["system_fingerprint"] == "fp_rich" and answer.json()["choices"][0]["logprobs"]["content"]
    for include_usage in (False, True):
        streamed = {**body, "stream": True, **({"stream_options": {"include_usage": True}} if include_usage else {})}
        through = _events(f"{base}/gateway/v1/chat/completions", streamed)
        assert through == _events(f"{provider_url}/v1/chat/completions", {**streamed, "model": "rich-gpt"})
        assert seen[-2]["body"]["stream_options"] == {"include_usage": True}  # the gateway always meters usage


def test_same_format_anthropic_passes_every_field_both_ways(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "rich", [("rich", "anthropic", "rich-claude", 1)])
    body = {
        "model": "rich",
        "max_tokens": 99,
        "system": [{"type": "text", "text": "terse", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [
            {"name": "f", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 50},
        "metadata": {"user_id": "u-1"},
        "top_k": 3,
        "stop_sequences": ["END"],
        "a_field_from_the_future": True,
    }
    answer = httpx.post(f"{base}/gateway/anthropic/v1/messages", json=body)
    assert seen[-1]["body"] == {**body, "model": "rich-claude"}
    direct = httpx.post(f"{provider_url}/v1/messages", json={**body, "model": "rich-claude"})
    assert answer.status_code == 200 and answer.content == direct.content
    assert answer.json()["content"][0]["type"] == "thinking" and answer.json()["usage"]["cache_read_input_tokens"] == 2
    streamed = {**body, "stream": True}
    assert _events(f"{base}/gateway/anthropic/v1/messages", streamed) == _events(
        f"{provider_url}/v1/messages", {**streamed, "model": "rich-claude"}
    )


def test_openai_tool_calls_and_choices_reach_an_anthropic_provider_translated(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "agent", [("agent", "anthropic", "tool-claude", 1)])
    tools = [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
        }
    ]
    client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="unused", max_retries=0)
    client.chat.completions.create(
        model="agent",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,
        user="u-1",
        max_completion_tokens=77,
        stop="END",
    )
    sent = seen[-1]["body"]
    assert sent["tools"] == [{"name": "f", "description": "d", "input_schema": {"type": "object"}, "strict": True}]
    assert sent["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}
    assert (sent["system"], sent["max_tokens"], sent["stop_sequences"], sent["metadata"]) == (
        "be brief",
        77,
        ["END"],
        {"user_id": "u-1"},
    )


def test_anthropic_tools_and_choices_reach_an_openai_provider_translated(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "agent", [("agent", "openai", "tool-gpt", 1)])
    client = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key="unused", max_retries=0)
    client.messages.create(
        model="agent",
        max_tokens=55,
        system="be brief",
        messages=[{"role": "user", "content": "x"}],
        tools=[
            {
                "name": "f",
                "description": "d",
                "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral"},
            }
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        metadata={"user_id": "u-1"},
    )
    sent = seen[-1]["body"]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "description": "d"}}
    ]
    assert (sent["tool_choice"], sent["parallel_tool_calls"], sent["user"]) == ("required", False, "u-1")
    assert sent["messages"][0] == {"role": "system", "content": "be brief"} and sent["max_tokens"] == 55


def test_anthropic_tool_results_become_tool_messages_errors_marked(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "agent", [("agent", "openai", "echo-gpt", 1)])
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "looking"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "t2", "name": "f", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "rain"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "no city", "is_error": True},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]
    response = httpx.post(
        f"{base}/gateway/anthropic/v1/messages", json={"model": "agent", "max_tokens": 9, "messages": messages}
    )
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "echo-gpt: and now?"
    assert seen[-1]["body"]["messages"][1:] == [
        {
            "role": "assistant",
            "content": "looking",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"city": "Oslo"}'}},
                {"id": "t2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "rain"},
        {"role": "tool", "tool_call_id": "t2", "content": "[tool error] no city"},
        {"role": "user", "content": [{"type": "text", "text": "and now?"}]},
    ]


def test_images_map_both_ways(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "see-claude", [("see-claude", "anthropic", "vision-claude", 1)])
    configure(base, provider_url, "see-gpt", [("see-gpt", "openai", "vision-gpt", 1)])
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    answer = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0).chat.completions.create(
        model="see-claude", messages=[{"role": "user", "content": parts}]
    )
    assert answer.choices[0].message.content == "image image/png; image https://example."
    assert seen[-1]["body"]["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",")[1]},
    }
    blocks = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",")[1]}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "and?"},
    ]
    message = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key="x", max_retries=0).messages.create(
        model="see-gpt", max_tokens=9, messages=[{"role": "user", "content": blocks}]
    )
    assert message.content[0].text == f"image {PNG[:22]}; image https://example.com/ca"


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_structured_output_becomes_a_forced_tool_for_anthropic(base: str, provider: Any, stream: bool) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "structured", [("structured", "anthropic", "json-claude", 1)])
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = {
        "model": "structured",
        "messages": [{"role": "user", "content": "where?"}],
        "stream": stream,
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    }
    client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0)
    if stream:
        chunks = list(client.chat.completions.create(**body))
        content, finish = (
            "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
            chunks[-1].choices[0].finish_reason,
        )
    else:
        choice = client.chat.completions.create(**body).choices[0]
        content, finish = choice.message.content, choice.finish_reason
    assert json.loads(content) == {"city": "Paris"} and finish == "stop"
    assert seen[-1]["body"]["tool_choice"] == {"type": "tool", "name": "place"}


def test_anthropic_streams_report_input_tokens_from_an_openai_provider(base: str, provider: Any) -> None:
    configure(base, provider[0], "via-openai", [("gpt", "openai", "echo-gpt", 1)])
    client = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key="x", max_retries=0)
    with client.messages.stream(
        model="via-openai", max_tokens=9, messages=[{"role": "user", "content": "a b"}]
    ) as stream:
        assert "".join(stream.text_stream) == "echo-gpt: a b"
        usage = stream.get_final_message().usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 3)


@pytest.mark.parametrize(
    ("client", "provider_kind", "change", "field"),
    [
        ("openai", "anthropic", {"seed": 1}, "seed"),
        ("openai", "anthropic", {"n": 2}, "n"),
        ("openai", "anthropic", {"logprobs": True}, "logprobs"),
        ("openai", "anthropic", {"response_format": {"type": "json_object"}}, "response_format"),
        (
            "openai",
            "anthropic",
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}]}
                ]
            },
            "messages[0].content[0].image_url.detail",
        ),
        (
            "openai",
            "anthropic",
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0].type",
        ),
        ("openai", "anthropic", {"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ("anthropic", "openai", {"top_k": 3}, "top_k"),
        ("anthropic", "openai", {"thinking": {"type": "enabled", "budget_tokens": 9}}, "thinking"),
        ("anthropic", "openai", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            "anthropic",
            "openai",
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages[0].content[0].type",
        ),
        ("anthropic", "openai", {"metadata": {"tenant": "x"}}, "metadata"),
        (
            "anthropic",
            "openai",
            {"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_what_cannot_be_translated_is_refused_naming_the_field(
    base: str, provider: Any, client: str, provider_kind: str, change: dict[str, Any], field: str
) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "cross", [("cross", provider_kind, "echo-x", 1)])
    body = {"model": "cross", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}], **change}
    path = "/gateway/v1/chat/completions" if client == "openai" else "/gateway/anthropic/v1/messages"
    calls = len(seen)
    response = httpx.post(f"{base}{path}", json=body)
    message = response.json()["error"]["message"]
    assert response.status_code == 400 and message.startswith(f"{field}:"), message
    assert len(seen) == calls  # nothing was sent


def _events(url: str, body: dict[str, Any]) -> list[str]:
    with httpx.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line]
