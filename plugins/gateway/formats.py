"""The two wire formats clients speak (OpenAI chat completions, Anthropic messages), to and from canonical."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from .providers import Chat, Completion, Finish, TextDelta

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
OPENAI_KNOWN = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop"}


class BadRequest(ValueError):
    """The client's request is malformed (400), with a message saying what is wrong."""


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        if any(part.get("type") != "text" for part in content):
            raise BadRequest(f"{where}: only text content is supported")
        return "".join(str(part.get("text", "")) for part in content)
    raise BadRequest(f"{where}: content must be a string or a list of text parts")


def _number(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or (kind is int and not isinstance(value, int))):
        raise BadRequest(f"{key} must be a {kind.__name__}")
    return value


def chat_from_openai(body: Any) -> Chat:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages: a non-empty list is required")
    messages = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(f"messages[{index}]: role must be one of {', '.join(ROLES)}")
        messages.append({"role": ROLES[message["role"]], "content": _text(message.get("content"), f"messages[{index}]")})
    stop = body.get("stop")
    return Chat(
        messages=messages,
        stream=bool(body.get("stream", False)),
        max_tokens=_number(body, "max_completion_tokens", int) or _number(body, "max_tokens", int),
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        stop=[stop] if isinstance(stop, str) else stop,
        extra={key: value for key, value in body.items() if key not in OPENAI_KNOWN},
    )


def chat_from_anthropic(body: Any) -> Chat:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if not isinstance(body.get("max_tokens"), int):
        raise BadRequest("max_tokens: an integer is required")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages: a non-empty list is required")
    messages = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"], "system")})
    for index, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages[{index}]: role must be user or assistant")
        messages.append({"role": message["role"], "content": _text(message.get("content"), f"messages[{index}]")})
    return Chat(
        messages=messages,
        stream=bool(body.get("stream", False)),
        max_tokens=body["max_tokens"],
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        stop=body.get("stop_sequences"),
    )


def openai_completion(completion: Completion, model: str) -> dict[str, Any]:
    usage = completion.usage
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text}, "finish_reason": completion.finish_reason}],
        "usage": {
            "prompt_tokens": usage.prompt_tokens or 0,
            "completion_tokens": usage.completion_tokens or 0,
            "total_tokens": (usage.prompt_tokens or 0) + (usage.completion_tokens or 0),
        },
    }


def anthropic_message(completion: Completion, model: str) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": _anthropic_stop(completion.finish_reason),
        "stop_sequence": None,
        "usage": {"input_tokens": completion.usage.prompt_tokens or 0, "output_tokens": completion.usage.completion_tokens or 0},
    }


def openai_error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def anthropic_error(message: str, kind: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _event(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def openai_stream(items: AsyncIterator[TextDelta | Finish], model: str, include_usage: bool) -> AsyncIterator[bytes]:
    """Chat-completion chunks, then ``data: [DONE]``; an error after the start is a final ``event: error``."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    yield _event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    try:
        async for item in items:
            if isinstance(item, TextDelta):
                yield _event({**base, "choices": [{"index": 0, "delta": {"content": item.text}, "finish_reason": None}]})
                continue
            yield _event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": item.reason}]})
            if include_usage:
                prompt, completion = item.usage.prompt_tokens or 0, item.usage.completion_tokens or 0
                usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                yield _event({**base, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"
    except Exception as error:  # after the headers, the only way left to say it
        yield _event(openai_error(str(error), "upstream_error"), event="error")


async def anthropic_stream(items: AsyncIterator[TextDelta | Finish], model: str) -> AsyncIterator[bytes]:
    """Messages-API events; an error after the start is a final ``event: error``."""
    message_id = f"msg_{uuid.uuid4().hex}"
    start = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None,
             "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
    yield _event({"type": "message_start", "message": start}, "message_start")
    yield _event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start")
    try:
        async for item in items:
            if isinstance(item, TextDelta):
                yield _event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": item.text}}, "content_block_delta")
                continue
            yield _event({"type": "content_block_stop", "index": 0}, "content_block_stop")
            delta = {"type": "message_delta", "delta": {"stop_reason": _anthropic_stop(item.reason), "stop_sequence": None},
                     "usage": {"output_tokens": item.usage.completion_tokens or 0}}
            yield _event(delta, "message_delta")
            yield _event({"type": "message_stop"}, "message_stop")
    except Exception as error:
        yield _event(anthropic_error(str(error), "api_error"), "error")


def _anthropic_stop(finish_reason: str) -> str:
    return {"length": "max_tokens", "tool_calls": "tool_use"}.get(finish_reason, "end_turn")
