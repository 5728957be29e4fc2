"""HTTP calls to LLM providers, each in its own wire format, and what their answers say about the call.

Redirects are never followed (a redirect could lead to a host the SSRF guard never
checked): a 3xx answer is a provider error. A provider's error body is never relayed:
only the ``error.message`` string of a JSON error, sanitized and cut short, is kept.
A stream that ends without the provider's terminal event (``[DONE]``,
``message_stop``) raises ``UpstreamError`` (truncated) instead of passing off a
partial answer as complete.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .formats import Event
from .store import Target

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
ERROR_BODY_LIMIT = 64 * 1024
ERROR_MESSAGE_LIMIT = 300


@dataclass
class Outcome:
    """What the provider's answer says about the call (for usage records and traces)."""

    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    """Input tokens read from the provider's prompt cache (part of ``input_tokens``)."""
    cache_write_tokens: int | None = None
    """Input tokens written to the provider's prompt cache (part of ``input_tokens``; Anthropic's cost more)."""
    reasoning_tokens: int | None = None
    """Output tokens spent reasoning (part of ``output_tokens``)."""
    finish_reasons: list[str] = field(default_factory=list)
    client_finish_reasons: list[str] | None = None
    """The finish reasons as the client received them, when its format is not the provider's."""
    text: list[str] | None = None
    """The answer's text, kept only when asked for (content capture in traces)."""

    def note_openai(self, payload: dict[str, Any]) -> None:
        """A chat completion, or one chunk of a streamed one."""
        self.model = payload.get("model") or self.model
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.input_tokens, self.output_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
            self.cached_tokens = _detail(usage, "prompt_tokens_details", "cached_tokens")
            self.reasoning_tokens = _detail(usage, "completion_tokens_details", "reasoning_tokens")
        for choice in payload.get("choices") or ():
            if choice.get("finish_reason"):
                self.finish_reasons.append(choice["finish_reason"])
            if self.text is not None:
                self.text.append((choice.get("message") or choice.get("delta") or {}).get("content") or "")

    def note_anthropic(self, payload: dict[str, Any]) -> None:
        """A message, or one event of a streamed one."""
        kind = payload.get("type")
        message: dict[str, Any] = (payload.get("message") or {}) if kind == "message_start" else payload
        if kind in ("message", "message_start"):
            self.model = message.get("model") or self.model
        if kind in ("message", "message_start", "message_delta"):
            self._anthropic_usage(message.get("usage"))
        reason = (
            (payload.get("delta") or {}).get("stop_reason") if kind == "message_delta" else payload.get("stop_reason")
        )
        if reason:
            self.finish_reasons.append(reason)
        if self.text is not None:
            blocks = (
                payload.get("content") or ()
                if kind == "message"
                else [payload.get("delta") or {}]
                if kind == "content_block_delta"
                else ()
            )
            self.text.extend(block.get("text") or "" for block in blocks)

    def _anthropic_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        if usage.get("input_tokens") is not None:
            read, written = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
            self.input_tokens = usage["input_tokens"] + (read or 0) + (written or 0)
            self.cached_tokens, self.cache_write_tokens = read, written
        if usage.get("output_tokens") is not None:
            self.output_tokens = usage["output_tokens"]


def _detail(usage: dict[str, Any], details: str, key: str) -> int | None:
    """A count from OpenAI's usage details (``prompt_tokens_details.cached_tokens``...), when it is one."""
    found = (usage.get(details) or {}).get(key) if isinstance(usage.get(details), dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None


class UpstreamError(Exception):
    """A provider call failed; ``status`` is the provider's HTTP status, or None for network errors and timeouts."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: str | None = None, timeout: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.timeout = timeout

    @property
    def retryable(self) -> bool:
        """Worth trying the next model: a server error, a network failure or a timeout."""
        return self.status is None or self.status >= 500


def chat_url(target: Target) -> tuple[str, dict[str, str]]:
    """The chat URL of the target's provider and the headers that authenticate to it."""
    if target.provider == "anthropic":
        headers = {"x-api-key": target.api_key, "anthropic-version": ANTHROPIC_VERSION, **target.headers}
        return f"{(target.base_url or ANTHROPIC_BASE).rstrip('/')}/v1/messages", headers
    return f"{(target.base_url or OPENAI_BASE).rstrip('/')}/chat/completions", {
        "authorization": f"Bearer {target.api_key}",
        **target.headers,
    }


async def post(
    client: aiohttp.ClientSession, target: Target, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[bytes, Any]:
    """POST ``body``; the answer's bytes and their parsed JSON."""
    response = await _send(client, url, headers, body, target)
    try:
        raw = await response.read()
        return raw, json.loads(raw)
    except (TimeoutError, aiohttp.ClientError, ValueError) as error:
        raise UpstreamError(
            f"{target.name}: the provider's answer broke off or is not JSON: {type(error).__name__}"
        ) from None
    finally:
        response.release()


async def stream(client: aiohttp.ClientSession, target: Target, body: dict[str, Any]) -> AsyncGenerator[Event, None]:
    """The provider's events as they come, ending with its terminal event;
    errors before the first are the provider's."""
    url, headers = chat_url(target)
    response = await _send(client, url, headers, body, target)
    terminal = "[DONE]" if target.provider == "openai" else "message_stop"
    try:
        async for event in _sse(response.content):
            if event.data == "[DONE]":
                yield event
                return
            try:
                event.payload = json.loads(event.data)
            except ValueError:
                raise UpstreamError(f"{target.name}: the provider's stream holds an event that is not JSON") from None
            if not isinstance(event.payload, dict):
                raise UpstreamError(f"{target.name}: the provider's stream holds an event that is not a JSON object")
            if event.name == "error" or "error" in event.payload and event.payload.get("type") in (None, "error"):
                raise UpstreamError(
                    f"{target.name}: the provider reported an error mid-stream{_message_of(event.payload)}"
                )
            yield event
            if event.payload.get("type") == terminal:
                return
    except (TimeoutError, aiohttp.ClientError) as error:
        raise UpstreamError(
            f"{target.name}: the stream broke off: {type(error).__name__}",
            timeout=isinstance(error, asyncio.TimeoutError),
        ) from None
    finally:
        response.close()
    raise UpstreamError(f"{target.name}: the provider's stream ended before {terminal}: the answer is truncated")


async def embed(client: aiohttp.ClientSession, target: Target, payload: dict[str, Any]) -> Any:
    if target.provider != "openai":
        raise UpstreamError(f"{target.name}: provider {target.provider!r} has no embeddings API", status=400)
    url = f"{(target.base_url or OPENAI_BASE).rstrip('/')}/embeddings"
    headers = {"authorization": f"Bearer {target.api_key}", **target.headers}
    return (await post(client, target, url, headers, {**payload, "model": target.model}))[1]


async def _send(
    client: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any], target: Target
) -> aiohttp.ClientResponse:
    """POST ``body``; the response (headers read, body not yet) or an ``UpstreamError``."""
    try:
        response = await client.post(url, json=body, headers=headers, allow_redirects=False)
    except TimeoutError:
        raise UpstreamError(f"{target.name}: the provider did not answer in time", timeout=True) from None
    except aiohttp.ClientConnectorError as error:
        raise UpstreamError(f"{target.name}: cannot reach the provider: {error.os_error}") from None
    except aiohttp.ClientError as error:
        raise UpstreamError(f"{target.name}: cannot reach the provider: {type(error).__name__}") from None
    if 300 <= response.status < 400:
        response.release()
        raise UpstreamError(
            f"{target.name}: the provider answered {response.status}, a redirect, which the gateway does not follow",
            status=502,
        )
    if response.status >= 400:
        try:
            detail = _message_of(json.loads(await _read_capped(response.content, ERROR_BODY_LIMIT)))
        except (TimeoutError, aiohttp.ClientError, ValueError, RecursionError):
            detail = ""
        finally:
            response.release()
        raise UpstreamError(
            f"{target.name}: the provider answered {response.status}{detail}",
            status=response.status,
            retry_after=response.headers.get("retry-after"),
        )
    return response


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """At most ``limit`` bytes of a body (an error body is read for its message only)."""
    chunks, size = [], 0
    while size < limit and (chunk := await content.read(limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _message_of(answer: Any) -> str:
    """``": <message>"`` from a JSON error of either format, sanitized and cut short; else nothing."""
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        return ""
    cleaned = "".join(char if char.isprintable() else " " for char in message[:ERROR_MESSAGE_LIMIT])
    return f": {cleaned}{'…' if len(message) > ERROR_MESSAGE_LIMIT else ''}"


async def _sse(content: aiohttp.StreamReader) -> AsyncIterator[Event]:
    """The events of a server-sent event stream."""
    name: str | None = None
    data: list[str] = []
    async for raw in content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Event(name, "\n".join(data))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield Event(name, "\n".join(data))
