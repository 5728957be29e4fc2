"""Calls to LLM providers, in and out of the gateway's canonical chat form.

Canonical form: an OpenAI-style chat request (``Chat``); results are a
``Completion``, or for streams a sequence of ``TextDelta`` ending in ``Finish``.
Adapters: ``openai`` (any OpenAI-compatible API) and ``anthropic`` (Messages API).
A stream that ends without the provider's terminal event raises ``UpstreamError``
(truncated) instead of passing off a partial answer as complete.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .store import Target

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024
PROVIDERS = ("openai", "anthropic")


@dataclass
class Chat:
    messages: list[dict[str, str]]  # role: system | user | assistant; content: text
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Other OpenAI parameters, passed on to OpenAI-compatible providers only."""


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Completion:
    text: str
    finish_reason: str
    usage: Usage


@dataclass
class TextDelta:
    text: str


@dataclass
class Finish:
    reason: str
    usage: Usage


class UpstreamError(Exception):
    """A provider call failed; ``status`` is the provider's HTTP status, or None for network errors and timeouts."""

    def __init__(self, message: str, status: int | None = None, retry_after: str | None = None, timeout: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.timeout = timeout

    @property
    def retryable(self) -> bool:
        """Worth trying the next model: a server error, a network failure or a timeout."""
        return self.status is None or self.status >= 500


async def complete(client: aiohttp.ClientSession, target: Target, chat: Chat) -> Completion:
    url, headers, body = _request(target, chat, stream=False)
    response = await _send(client, url, headers, body, target)
    try:
        data = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        raise UpstreamError(f"{target.name}: the provider's answer broke off or is not JSON: {type(error).__name__}") from None
    finally:
        response.release()
    if target.provider == "anthropic":
        text = "".join(block.get("text", "") for block in data.get("content", []) if block.get("type") == "text")
        usage = data.get("usage") or {}
        return Completion(text, _finish_from_anthropic(data.get("stop_reason")), Usage(usage.get("input_tokens"), usage.get("output_tokens")))
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    return Completion(choice["message"].get("content") or "", choice.get("finish_reason") or "stop", Usage(usage.get("prompt_tokens"), usage.get("completion_tokens")))


async def stream(client: aiohttp.ClientSession, target: Target, chat: Chat) -> AsyncIterator[TextDelta | Finish]:
    """Yield the answer as it comes; errors before the first item are the provider's (fallback may follow)."""
    url, headers, body = _request(target, chat, stream=True)
    response = await _send(client, url, headers, body, target)
    try:
        parse = _anthropic_events if target.provider == "anthropic" else _openai_events
        async for item in parse(_sse(response.content)):
            yield item
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        raise UpstreamError(f"{target.name}: the stream broke off: {type(error).__name__}", timeout=isinstance(error, asyncio.TimeoutError)) from None
    finally:
        response.close()


async def embed(client: aiohttp.ClientSession, target: Target, payload: dict[str, Any]) -> dict[str, Any]:
    if target.provider != "openai":
        raise UpstreamError(f"{target.name}: provider {target.provider!r} has no embeddings API", status=400)
    url = f"{(target.base_url or OPENAI_BASE).rstrip('/')}/embeddings"
    headers = {"authorization": f"Bearer {target.api_key}", **target.headers}
    response = await _send(client, url, headers, {**payload, "model": target.model}, target)
    try:
        return await response.json(content_type=None)  # type: ignore[no-any-return]
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        raise UpstreamError(f"{target.name}: the provider's answer broke off or is not JSON: {type(error).__name__}") from None
    finally:
        response.release()


def _request(target: Target, chat: Chat, *, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    if target.provider == "anthropic":
        system = "\n\n".join(m["content"] for m in chat.messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": target.model,
            "messages": [m for m in chat.messages if m["role"] != "system"],
            "max_tokens": chat.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS,
            "stream": stream,
        }
        if system:
            body["system"] = system
        for key, value in (("temperature", chat.temperature), ("top_p", chat.top_p), ("stop_sequences", chat.stop)):
            if value is not None:
                body[key] = value
        headers = {"x-api-key": target.api_key, "anthropic-version": ANTHROPIC_VERSION, **target.headers}
        return f"{(target.base_url or ANTHROPIC_BASE).rstrip('/')}/v1/messages", headers, body
    body = {**chat.extra, "model": target.model, "messages": chat.messages, "stream": stream}
    for key, value in (("max_tokens", chat.max_tokens), ("temperature", chat.temperature), ("top_p", chat.top_p), ("stop", chat.stop)):
        if value is not None:
            body[key] = value
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"authorization": f"Bearer {target.api_key}", **target.headers}
    return f"{(target.base_url or OPENAI_BASE).rstrip('/')}/chat/completions", headers, body


async def _send(client: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any], target: Target) -> aiohttp.ClientResponse:
    """POST ``body``; the response (headers read, body not yet) or an ``UpstreamError``."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except asyncio.TimeoutError:
        raise UpstreamError(f"{target.name}: the provider did not answer in time", timeout=True) from None
    except aiohttp.ClientError as error:
        raise UpstreamError(f"{target.name}: cannot reach the provider: {type(error).__name__}") from None
    if response.status >= 400:
        try:
            detail = (await response.read()).decode(errors="replace")[:500]
        except (aiohttp.ClientError, asyncio.TimeoutError):
            detail = "(no body)"
        finally:
            response.release()
        raise UpstreamError(
            f"{target.name}: the provider answered {response.status}: {detail}",
            status=response.status,
            retry_after=response.headers.get("retry-after"),
        )
    return response


async def _sse(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str | None, str]]:
    """(event, data) pairs of a server-sent event stream."""
    event, data = None, []
    async for raw in content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, "\n".join(data)


async def _openai_events(events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[TextDelta | Finish]:
    reason, usage = "stop", Usage()
    async for event, data in events:
        if data == "[DONE]":
            yield Finish(reason, usage)
            return
        chunk = json.loads(data)
        if event == "error" or "error" in chunk:
            raise UpstreamError(f"the provider reported an error mid-stream: {chunk.get('error')}")
        if chunk.get("usage"):
            usage = Usage(chunk["usage"].get("prompt_tokens"), chunk["usage"].get("completion_tokens"))
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield TextDelta(text)
            reason = choice.get("finish_reason") or reason
    raise UpstreamError("the provider's stream ended before [DONE]: the answer is truncated")


async def _anthropic_events(events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[TextDelta | Finish]:
    reason, usage = "stop", Usage()
    async for _event, data in events:
        message = json.loads(data)
        kind = message.get("type")
        if kind == "message_start":
            usage.prompt_tokens = ((message.get("message") or {}).get("usage") or {}).get("input_tokens")
        elif kind == "content_block_delta" and (message.get("delta") or {}).get("type") == "text_delta":
            yield TextDelta(message["delta"]["text"])
        elif kind == "message_delta":
            reason = _finish_from_anthropic((message.get("delta") or {}).get("stop_reason"))
            usage.completion_tokens = (message.get("usage") or {}).get("output_tokens")
        elif kind == "message_stop":
            yield Finish(reason, usage)
            return
        elif kind == "error":
            raise UpstreamError(f"the provider reported an error mid-stream: {message.get('error')}")
    raise UpstreamError("the provider's stream ended before message_stop: the answer is truncated")


def _finish_from_anthropic(stop_reason: str | None) -> str:
    return {"max_tokens": "length", "tool_use": "tool_calls"}.get(stop_reason or "", "stop")
