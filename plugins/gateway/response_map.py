"""A provider's answer in the client's format: unary (``client_answer``) and streamed (``StreamMapper``).

Same format: unchanged (the one exception: an OpenAI stream's usage chunk, asked for by
the gateway, is not passed on unless the client asked for it as well). Across formats:
text, tool calls, refusals, stop reasons and usage map both ways, streams included
(``input_json_delta`` <-> tool-call argument deltas); anything else the provider
answers is an ``UpstreamError`` rather than something silently lost.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .formats import DONE, Event
from .providers import UpstreamError
from .request_map import Plan

OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def client_finish_reason(plan: Plan, reason: str) -> str:
    """A provider's finish reason as the client receives it (``tool_use`` becomes ``tool_calls``...)."""
    if plan.same:
        return reason
    if plan.client == "openai":
        return "stop" if plan.structured_tool and reason == "tool_use" else OPENAI_FINISH.get(reason, "stop")
    return ANTHROPIC_STOP.get(reason, "end_turn")


def client_answer(plan: Plan, answer: dict[str, Any]) -> dict[str, Any]:
    """A unary answer translated to the client's format (only called when the formats differ)."""
    return _openai_completion(answer, plan) if plan.client == "openai" else _anthropic_message(answer)


def _openai_completion(message: dict[str, Any], plan: Plan) -> dict[str, Any]:
    texts, calls = [], []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use" and block.get("name") == plan.structured_tool:
            texts.append(json.dumps(block.get("input"), separators=(",", ":")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
                }
            )
        else:
            raise UpstreamError(f"the provider answered a {kind!r} block, which has no OpenAI form", status=502)
    stop = message.get("stop_reason")
    finish = client_finish_reason(plan, stop or "")
    answer: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        answer["tool_calls"] = calls
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [{"index": 0, "message": answer, "finish_reason": finish, "logprobs": None}],
        "usage": openai_usage(message.get("usage") or {}),
    }


def _anthropic_message(completion: dict[str, Any]) -> dict[str, Any]:
    choices = completion.get("choices") or []
    if not choices:
        raise UpstreamError("the provider answered no choices", status=502)
    message, blocks = choices[0].get("message") or {}, []
    stop = ANTHROPIC_STOP.get(choices[0].get("finish_reason") or "", "end_turn")
    for key in ("content", "refusal"):
        if message.get(key):
            blocks.append({"type": "text", "text": message[key]})
    if message.get("refusal"):
        stop = "refusal"
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _arguments(function.get("arguments")),
            }
        )
    return {
        "id": completion.get("id"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage") or {}),
    }


def _arguments(text: Any) -> Any:
    try:
        arguments = json.loads(text or "{}")
    except (TypeError, ValueError):
        raise UpstreamError("the provider's tool call arguments are not JSON", status=502) from None
    if not isinstance(arguments, dict):
        raise UpstreamError("the provider's tool call arguments are not a JSON object", status=502)
    return arguments


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    completion = usage.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def anthropic_usage(usage: dict[str, Any]) -> dict[str, Any]:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    translated = {
        "input_tokens": (usage.get("prompt_tokens") or 0) - cached,
        "output_tokens": usage.get("completion_tokens") or 0,
    }
    if cached:
        translated["cache_read_input_tokens"] = cached
    return translated


class StreamMapper:
    """Turns the provider's stream events into the client's, one event at a time (``feed``)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.feed = (
            self._same
            if plan.same
            else self._openai_from_anthropic
            if plan.client == "openai"
            else self._anthropic_from_openai
        )
        # state of the translations
        self.base: dict[str, Any] = {}
        self.usage: dict[str, Any] = {}
        self.stop: str | None = None
        self.index = -1  # the last OpenAI tool index (to OpenAI), or Anthropic block index (to Anthropic)
        self.blocks: dict[int, tuple[str, int]] = {}  # Anthropic block index -> (kind, OpenAI tool index)
        self.tool_blocks: dict[int, int] = {}  # OpenAI tool index -> Anthropic block index
        self.open: str | None = None  # the Anthropic block being written: "text" or "tool <index>"

    def _same(self, event: Event) -> list[Event]:
        payload = event.payload
        if (
            self.plan.client == "openai"
            and not self.plan.client_usage
            and payload
            and payload.get("usage")
            and not payload.get("choices")
        ):
            return []  # the usage chunk the gateway asked for on its own behalf
        return [event]

    # -- Anthropic provider, OpenAI client ------------------------------------------------------------
    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Event:
        return Event.of(
            {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        )

    def _openai_from_anthropic(self, event: Event) -> list[Event]:
        payload = event.payload
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message") or {}
            self.base = {
                "id": message.get("id"),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": message.get("model"),
            }
            self.usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._openai_block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._openai_delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == "message_delta":
            self.stop = (payload.get("delta") or {}).get("stop_reason") or self.stop
            self.usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
            return []
        if kind == "message_stop":
            finish = (
                "stop"
                if self.plan.structured_tool and self.stop == "tool_use"
                else OPENAI_FINISH.get(self.stop or "", "stop")
            )
            events = [self._chunk({}, finish)]
            if self.plan.client_usage:
                events.append(Event.of({**self.base, "choices": [], "usage": openai_usage(self.usage)}))
            return [*events, DONE]
        return []  # ping, content_block_stop

    def _openai_block_start(self, index: int, block: dict[str, Any]) -> list[Event]:
        kind = block.get("type")
        if kind == "text":
            self.blocks[index] = ("text", -1)
            return [self._chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "tool_use" and block.get("name") == self.plan.structured_tool:
            self.blocks[index] = ("structured", -1)
            return []
        if kind == "tool_use":
            self.index += 1
            self.blocks[index] = ("tool", self.index)
            call = {
                "index": self.index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        raise UpstreamError(f"the provider streamed a {kind!r} block, which has no OpenAI form", status=502)

    def _openai_delta(self, index: int, delta: dict[str, Any]) -> list[Event]:
        block, tool_index = self.blocks.get(index, ("text", -1))
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta" and block == "structured":
            return [self._chunk({"content": delta.get("partial_json", "")})]
        if kind == "input_json_delta":
            return [
                self._chunk(
                    {"tool_calls": [{"index": tool_index, "function": {"arguments": delta.get("partial_json", "")}}]}
                )
            ]
        raise UpstreamError(f"the provider streamed a {kind!r} delta, which has no OpenAI form", status=502)

    # -- OpenAI provider, Anthropic client ------------------------------------------------------------
    def _anthropic_from_openai(self, event: Event) -> list[Event]:
        events = []
        if not self.base:
            payload = event.payload or {}
            self.base = {"id": payload.get("id"), "model": payload.get("model")}
            start = {
                **self.base,
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            events.append(Event.of({"type": "message_start", "message": start}, "message_start"))
        if event.payload is None:  # [DONE]
            return [*events, *self._anthropic_finish()]
        if event.payload.get("usage"):
            self.usage = event.payload["usage"]
        for choice in event.payload.get("choices") or ():
            delta = choice.get("delta") or {}
            for key in ("content", "refusal"):
                if delta.get(key):
                    events.extend(self._anthropic_text(delta[key]))
            if delta.get("refusal"):
                self.stop = "refusal"
            for call in delta.get("tool_calls") or ():
                events.extend(self._anthropic_tool_delta(call))
            if choice.get("finish_reason") and self.stop != "refusal":
                self.stop = ANTHROPIC_STOP.get(choice["finish_reason"], "end_turn")
        return events

    def _anthropic_open(self, key: str, block: dict[str, Any]) -> list[Event]:
        events = self._anthropic_close()
        self.index += 1
        self.open = key
        events.append(
            Event.of(
                {"type": "content_block_start", "index": self.index, "content_block": block}, "content_block_start"
            )
        )
        return events

    def _anthropic_close(self) -> list[Event]:
        if self.open is None:
            return []
        self.open = None
        return [Event.of({"type": "content_block_stop", "index": self.index}, "content_block_stop")]

    def _anthropic_text(self, text: str) -> list[Event]:
        events = [] if self.open == "text" else self._anthropic_open("text", {"type": "text", "text": ""})
        delta = {"type": "content_block_delta", "index": self.index, "delta": {"type": "text_delta", "text": text}}
        return [*events, Event.of(delta, "content_block_delta")]

    def _anthropic_tool_delta(self, call: dict[str, Any]) -> list[Event]:
        function, position = call.get("function") or {}, call.get("index", 0)
        events: list[Event] = []
        if position not in self.tool_blocks:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": {},
            }
            events = self._anthropic_open(f"tool {position}", block)
            self.tool_blocks[position] = self.index
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(
                Event.of(
                    {"type": "content_block_delta", "index": self.tool_blocks[position], "delta": delta},
                    "content_block_delta",
                )
            )
        return events

    def _anthropic_finish(self) -> list[Event]:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop or "end_turn", "stop_sequence": None},
            "usage": anthropic_usage(self.usage),
        }
        return [
            *self._anthropic_close(),
            Event.of(delta, "message_delta"),
            Event.of({"type": "message_stop"}, "message_stop"),
        ]
