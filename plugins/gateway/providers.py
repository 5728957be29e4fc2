"""LLM providers: where each one's chat API is, what their answers say about a call (``Outcome``), and how
a call failed (``UpstreamError``). The HTTP calls themselves are in :mod:`.upstream`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .store import Target

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


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
