"""A client's request as the provider's format wants it (``provider_request``).

Same format: the body unchanged but for ``model`` (and, for OpenAI streams, usage
asked for so that calls can be metered; the client sees it only if it asked too).
Across formats: OpenAI chat completions <-> Anthropic messages, field by field; a
field that has no faithful form on the other side is refused with ``BadRequest``
naming it. The README's mapping table describes exactly this module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core import jsonbody

from .formats import BadRequest, Format, json_object

ANTHROPIC_DEFAULT_MAX_TOKENS = 4096
DEFAULT_STRUCTURED_TOOL = "json_output"

OPENAI_TRANSLATED = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "user",
}
OPENAI_NEUTRAL: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "store": False,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}
"""Fields accepted across formats only with the value that means "nothing asked"."""
ANTHROPIC_TRANSLATED = {
    "model",
    "messages",
    "system",
    "max_tokens",
    "stream",
    "temperature",
    "top_p",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
}
ANTHROPIC_NEUTRAL: dict[str, Any] = {"thinking": {"type": "disabled"}}
DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64")


@dataclass
class Plan:
    """How the provider's answer goes back to the client."""

    client: Format
    provider: Format
    structured_tool: str | None = None
    """Anthropic tool forced to carry an OpenAI ``response_format`` JSON schema; its input is the answer text."""
    client_usage: bool = False
    """An OpenAI client stream asked for the final usage chunk."""

    @property
    def same(self) -> bool:
        return self.client == self.provider


def provider_request(client: Format, provider: Format, body: dict[str, Any], model: str) -> tuple[dict[str, Any], Plan]:
    options: dict[str, Any] = body["stream_options"] if isinstance(body.get("stream_options"), dict) else {}
    plan = Plan(client, provider, client_usage=client == "openai" and bool(options.get("include_usage")))
    if client == provider:
        _list(body.get("messages"), "messages", required=True)
        request = {**body, "model": model}
        if provider == "openai" and is_stream(body):
            request["stream_options"] = {**options, "include_usage": True}
        return request, plan
    if client == "openai":
        return _anthropic_from_openai(body, model, plan), plan
    return _openai_from_anthropic(body, model), plan


def is_stream(body: dict[str, Any]) -> bool:
    return body.get("stream") is True


# -- OpenAI client, Anthropic provider -------------------------------------------------------------
def _anthropic_from_openai(body: dict[str, Any], model: str, plan: Plan) -> dict[str, Any]:
    _refuse_untranslatable(body, OPENAI_TRANSLATED, OPENAI_NEUTRAL, "Anthropic")
    system, messages = _anthropic_messages(body.get("messages"))
    max_tokens = _integer(body, "max_completion_tokens") or _integer(body, "max_tokens") or ANTHROPIC_DEFAULT_MAX_TOKENS
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": is_stream(body),
    }
    if system:
        request["system"] = system
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            request[key] = _number(body, key)
    stop = body.get("stop")
    if stop is not None:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else _strings(stop, "stop")
    if body.get("user") is not None:
        request["metadata"] = {"user_id": _string(body["user"], "user")}
    if body.get("tools"):
        request["tools"] = [
            _anthropic_tool(tool, f"tools[{index}]") for index, tool in enumerate(_list(body["tools"], "tools"))
        ]
    choice = _anthropic_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        request["tool_choice"] = choice
    _structured_output(body.get("response_format"), request, plan)
    return request


def _anthropic_messages(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(_list(raw, "messages", required=True)):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where}: a message must be an object")
        if message.get("name") is not None:
            raise BadRequest(f"{where}.name: Anthropic messages have no participant names")
        if message.get("function_call") is not None:
            raise BadRequest(
                f"{where}.function_call: the legacy function call form cannot be translated; use tool_calls"
            )
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content"), f"{where}.content"))
        elif role == "user":
            _append(messages, "user", _anthropic_user_blocks(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _append(messages, "assistant", _anthropic_assistant_blocks(message, where))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": _string(message.get("tool_call_id"), f"{where}.tool_call_id"),
                "content": _plain_text(message.get("content"), f"{where}.content"),
            }
            _append(messages, "user", [result])
        else:
            raise BadRequest(f"{where}.role: must be one of system, developer, user, assistant, tool")
    return "\n\n".join(system), messages


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add a turn; consecutive turns of one role become one (tool results first, as Anthropic wants)."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _anthropic_user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for index, part in enumerate(_list(content, where)):
        here = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": _string(part.get("text"), f"{here}.text")})
        elif kind == "image_url":
            blocks.append(_anthropic_image(part.get("image_url"), f"{here}.image_url"))
        else:
            raise BadRequest(
                f"{here}.type: {kind!r} content cannot be translated for an Anthropic provider (text and image_url can)"
            )
    return blocks


def _anthropic_image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise BadRequest(f"{where}.url: a string is required")
    detail = image.get("detail")
    if detail not in (None, "auto", "high"):
        raise BadRequest(
            f"{where}.detail: {detail!r} has no Anthropic equivalent (Anthropic reads images at full detail)"
        )
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        match = DATA_URL.fullmatch(header)
        if match is None or not data:
            raise BadRequest(f"{where}.url: a data URL must read data:image/<type>;base64,<data>")
        return {"type": "image", "source": {"type": "base64", "media_type": match[1], "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"{where}.url: must be an https or data: URL")


def _anthropic_assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        blocks.extend([{"type": "text", "text": content}] if content else [])
    elif content is not None:
        for index, part in enumerate(_list(content, f"{where}.content")):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("text", "refusal"):
                raise BadRequest(f"{where}.content[{index}].type: {kind!r} cannot be translated (text and refusal can)")
            text = _string(part.get(kind), f"{where}.content[{index}].{kind}")
            blocks.extend([{"type": "text", "text": text}] if text else [])
    for index, call in enumerate(_list(message.get("tool_calls") or [], f"{where}.tool_calls")):
        here = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise BadRequest(f"{here}: only function tool calls can be translated")
        raw_arguments = function.get("arguments") or "{}"
        try:
            if not isinstance(raw_arguments, str):
                raise TypeError
            arguments = jsonbody.loads(raw_arguments)
        except (TypeError, ValueError):
            raise BadRequest(f"{here}.function.arguments: must be a JSON object in a string") from None
        if not isinstance(arguments, dict):
            raise BadRequest(f"{here}.function.arguments: must be a JSON object in a string")
        blocks.append(
            {
                "type": "tool_use",
                "id": _string(call.get("id"), f"{here}.id"),
                "name": _string(function.get("name"), f"{here}.function.name"),
                "input": arguments,
            }
        )
    return blocks


def _anthropic_tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        raise BadRequest(f"{where}.type: only function tools can be translated for an Anthropic provider")
    function = tool["function"]
    entry: dict[str, Any] = {
        "name": _string(function.get("name"), f"{where}.function.name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        entry["description"] = _string(function["description"], f"{where}.function.description")
    if function.get("strict"):
        entry["strict"] = True
    return entry


def _anthropic_tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        translated = None
    elif choice in ("auto", "none"):
        translated = {"type": choice}
    elif choice == "required":
        translated = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        translated = {"type": "tool", "name": _string(choice["function"].get("name"), "tool_choice.function.name")}
    else:
        raise BadRequest("tool_choice: must be auto, none, required or a function choice")
    if parallel is False and (translated or {}).get("type") != "none":
        translated = {**(translated or {"type": "auto"}), "disable_parallel_tool_use": True}
    elif parallel not in (None, True, False):
        raise BadRequest("parallel_tool_calls: must be a boolean")
    return translated


def _structured_output(response_format: Any, request: dict[str, Any], plan: Plan) -> None:
    """``response_format`` json_schema becomes one forced tool whose input is the answer."""
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if kind in (None, "text"):
        return
    if kind != "json_schema":
        raise BadRequest(
            f"response_format: {kind!r} has no Anthropic equivalent; json_schema (with a schema) can be translated"
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise BadRequest(
            "response_format.json_schema.schema: an object schema is required to translate it for an Anthropic provider"
        )
    if request.get("tools"):
        raise BadRequest("response_format: json_schema cannot be combined with tools for an Anthropic provider")
    name = spec.get("name") or DEFAULT_STRUCTURED_TOOL
    tool: dict[str, Any] = {
        "name": name,
        "description": spec.get("description") or "Give the answer as this tool's input.",
        "input_schema": schema,
    }
    if spec.get("strict"):
        tool["strict"] = True
    request["tools"] = [tool]
    request["tool_choice"] = {"type": "tool", "name": name}
    plan.structured_tool = name


# -- Anthropic client, OpenAI provider -------------------------------------------------------------
def _openai_from_anthropic(body: dict[str, Any], model: str) -> dict[str, Any]:
    _refuse_untranslatable(body, ANTHROPIC_TRANSLATED, ANTHROPIC_NEUTRAL, "OpenAI")
    max_tokens = _integer(body, "max_tokens")
    if max_tokens is None:
        raise BadRequest("max_tokens: an integer is required")
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _plain_text(body["system"], "system")})
    for index, message in enumerate(_list(body.get("messages"), "messages", required=True)):
        messages.extend(_openai_messages(message, f"messages[{index}]"))
    request: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if is_stream(body):
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            request[key] = _number(body, key)
    if body.get("stop_sequences") is not None:
        request["stop"] = _strings(body["stop_sequences"], "stop_sequences")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
            raise BadRequest("metadata: only user_id can be translated for an OpenAI provider")
        if metadata.get("user_id") is not None:
            request["user"] = _string(metadata["user_id"], "metadata.user_id")
    if body.get("tools"):
        request["tools"] = [
            _openai_tool(tool, f"tools[{index}]") for index, tool in enumerate(_list(body["tools"], "tools"))
        ]
    request.update(_openai_tool_choice(body.get("tool_choice")))
    return request


def _openai_messages(message: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise BadRequest(f"{where}.role: must be user or assistant")
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = _list(content, f"{where}.content")
    if role == "assistant":
        return [_openai_assistant(blocks, f"{where}.content")]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        here = f"{where}.content[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            results.append(_openai_tool_result(block, here))
        elif kind == "text":
            parts.append({"type": "text", "text": _string(block.get("text"), f"{here}.text")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source"), f"{here}.source")}})
        else:
            raise BadRequest(
                f"{here}.type: {kind!r} blocks cannot be translated for an OpenAI provider "
                "(text, image and tool_result can)"
            )
    return [*results, *([{"role": "user", "content": parts}] if parts else [])]


def _openai_assistant(blocks: list[Any], where: str) -> dict[str, Any]:
    texts, calls = [], []
    for index, block in enumerate(blocks):
        here = f"{where}[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_string(block.get("text"), f"{here}.text"))
        elif kind == "tool_use":
            arguments = block.get("input") if block.get("input") is not None else {}
            calls.append(
                {
                    "id": _string(block.get("id"), f"{here}.id"),
                    "type": "function",
                    "function": {
                        "name": _string(block.get("name"), f"{here}.name"),
                        "arguments": json.dumps(arguments),
                    },
                }
            )
        else:
            raise BadRequest(
                f"{here}.type: {kind!r} blocks cannot be translated for an OpenAI provider (text and tool_use can)"
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    content = block.get("content")
    text = "" if content is None else _plain_text(content, f"{where}.content")
    if block.get("is_error"):
        text = f"[tool error] {text}"
    return {"role": "tool", "tool_call_id": _string(block.get("tool_use_id"), f"{where}.tool_use_id"), "content": text}


def _image_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        media_type = _string(source.get("media_type"), f"{where}.media_type")
        return f"data:{media_type};base64,{_string(source.get('data'), f'{where}.data')}"
    if kind == "url":
        return _string(source.get("url"), f"{where}.url")
    raise BadRequest(f"{where}.type: {kind!r} image sources cannot be translated (base64 and url can)")


def _openai_tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise BadRequest(
            f"{where}.type: {kind!r} is an Anthropic server tool; "
            "only client tools can be translated for an OpenAI provider"
        )
    function: dict[str, Any] = {
        "name": _string(tool.get("name"), f"{where}.name"),
        "parameters": tool.get("input_schema") or {"type": "object"},
    }
    if tool.get("description"):
        function["description"] = _string(tool["description"], f"{where}.description")
    if tool.get("strict"):
        function["strict"] = True
    return {"type": "function", "function": function}


def _openai_tool_choice(choice: Any) -> dict[str, Any]:
    if choice is None:
        return {}
    kind = choice.get("type") if isinstance(choice, dict) else None
    translated: dict[str, Any]
    if kind in ("auto", "none"):
        translated = {"tool_choice": kind}
    elif kind == "any":
        translated = {"tool_choice": "required"}
    elif kind == "tool":
        translated = {
            "tool_choice": {"type": "function", "function": {"name": _string(choice.get("name"), "tool_choice.name")}}
        }
    else:
        raise BadRequest("tool_choice.type: must be auto, any, tool or none")
    if choice.get("disable_parallel_tool_use"):
        translated["parallel_tool_calls"] = False
    return translated


# -- shared checks ----------------------------------------------------------------------------------
def _refuse_untranslatable(body: dict[str, Any], translated: set[str], neutral: dict[str, Any], provider: str) -> None:
    json_object(body)
    for key, value in body.items():
        if key in translated or value is None or (key in neutral and value == neutral[key]):
            continue
        raise BadRequest(f"{key}: cannot be translated for an {provider} provider")


def _plain_text(content: Any, where: str) -> str:
    """Text content: a string, or a list of text parts (OpenAI) or text blocks (Anthropic)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        return "".join(_string(part.get("text"), f"{where}[].text") for part in content)
    raise BadRequest(f"{where}: only text can be translated here (a string or text parts)")


def _list(value: Any, where: str, required: bool = False) -> list[Any]:
    if not isinstance(value, list) or (required and not value):
        raise BadRequest(f"{where}: a {'non-empty ' if required else ''}list is required")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where}: a string is required")
    return value


def _strings(value: Any, where: str) -> list[str]:
    return [_string(item, f"{where}[{index}]") for index, item in enumerate(_list(value, where))]


def _number(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{key}: a number is required")
    return value


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadRequest(f"{key}: an integer is required")
    return value
