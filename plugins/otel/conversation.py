"""The messages of an LLM call, in one shape, from whichever convention carried them.

Read only when a span is shown (never at ingest). The shape is the OpenTelemetry GenAI one
(``gen_ai.input.messages``): ``{"role", "parts": [...]}``, see :data:`.conventions.Message`.
Readers are tried newest first; the first that finds messages gives them:

1. ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (and ``gen_ai.system_instructions``);
2. the earlier flattened ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (OpenLLMetry too);
3. OpenInference ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*``;
4. Vercel AI SDK ``ai.prompt.messages`` (or ``ai.prompt``), ``ai.response.text``, ``ai.response.toolCalls``;
5. MLflow ``mlflow.spanInputs`` / ``mlflow.spanOutputs`` (OpenAI or Anthropic shaped, or text).

Log records (OTLP logs: ``gen_ai.user.message``, ``gen_ai.choice``...) are read by :func:`from_events`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .conventions import Attributes, Message, StoredCall, json_value, llm_facts

Conversation = tuple[list[Message], list[Message]]
"""Input messages, output messages."""

EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
FLATTENED_MARKERS = (
    "gen_ai.prompt.0.role",
    "gen_ai.completion.0.role",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.0.content",
)
GENAI_EVENTS = frozenset((*EVENT_ROLES, CHOICE_EVENT, DETAILS_EVENT))
"""Log records (or span events) that carry a call's messages."""


def conversation(attributes: Attributes) -> Conversation:
    """The call's input and output messages, from the first convention that has them (``([], [])`` for none)."""
    for reader in (_gen_ai, _gen_ai_flattened, _openinference, _vercel, _mlflow):
        found = reader(attributes)
        if found[0] or found[1]:
            return found
    return [], []


def from_events(events: Iterable[tuple[str, Attributes, Any]]) -> Conversation:
    """Messages from GenAI events ``(name, attributes, body)``, in order: log records or span events."""
    inputs: list[Message] = []
    outputs: list[Message] = []
    for name, attributes, body in events:
        if name == DETAILS_EVENT:
            found = _gen_ai(attributes)
            inputs += found[0]
            outputs += found[1]
        elif name in EVENT_ROLES:
            body = body if isinstance(body, dict) else {"content": body}
            inputs.append(_openai_message({"role": EVENT_ROLES[name], **body}))
        elif name == CHOICE_EVENT and isinstance(body, dict):
            message = _openai_message({"role": "assistant", **(body.get("message") or {})})
            if body.get("finish_reason"):
                message["finish_reason"] = body["finish_reason"]
            outputs.append(message)
    return inputs, outputs


# -- readers, one per convention -----------------------------------------------------------------


def _gen_ai(attributes: Attributes) -> Conversation:
    inputs = [_semconv_message(m) for m in _list(attributes.get("gen_ai.input.messages"))]
    system = _list(attributes.get("gen_ai.system_instructions"))
    if system:
        inputs.insert(0, {"role": "system", "parts": [_semconv_part(part) for part in system]})
    return inputs, [_semconv_message(m) for m in _list(attributes.get("gen_ai.output.messages"))]


def _gen_ai_flattened(attributes: Attributes) -> Conversation:
    if not any(key in attributes for key in FLATTENED_MARKERS):
        return [], []
    inputs = [_flat_message(fields) for fields in _indexed(attributes, "gen_ai.prompt.")]
    outputs = [_flat_message(fields, "assistant") for fields in _indexed(attributes, "gen_ai.completion.")]
    return inputs, outputs


def _openinference(attributes: Attributes) -> Conversation:
    if "llm.input_messages.0.message.role" not in attributes and "llm.output_messages.0.message.role" not in attributes:
        return [], []
    return (
        [_openinference_message(fields) for fields in _indexed(attributes, "llm.input_messages.")],
        [_openinference_message(fields) for fields in _indexed(attributes, "llm.output_messages.")],
    )


def _vercel(attributes: Attributes) -> Conversation:
    prompt = json_value(attributes.get("ai.prompt.messages"))
    if not isinstance(prompt, list):
        whole = json_value(attributes.get("ai.prompt"))
        prompt = []
        if isinstance(whole, dict):
            if whole.get("system"):
                prompt.append({"role": "system", "content": whole["system"]})
            if isinstance(whole.get("messages"), list):
                prompt += whole["messages"]
            elif whole.get("prompt"):
                prompt.append({"role": "user", "content": whole["prompt"]})
    inputs = [_openai_message(m) for m in prompt if isinstance(m, dict)]
    parts: list[dict[str, Any]] = []
    if isinstance(attributes.get("ai.response.text"), str) and attributes["ai.response.text"]:
        parts.append(_text(attributes["ai.response.text"]))
    for call in _list(attributes.get("ai.response.toolCalls")):
        if isinstance(call, dict):
            parts.append(_tool_call(call.get("toolCallId"), call.get("toolName"), call.get("args", call.get("input"))))
    outputs = [{"role": "assistant", "parts": parts}] if parts else []
    if outputs and attributes.get("ai.response.finishReason"):
        outputs[0]["finish_reason"] = attributes["ai.response.finishReason"]
    return inputs, outputs


def _mlflow(attributes: Attributes) -> Conversation:
    if "mlflow.spanInputs" not in attributes and "mlflow.spanOutputs" not in attributes:
        return [], []
    given = json_value(attributes.get("mlflow.spanInputs"))
    inputs: list[Message] = []
    if isinstance(given, dict):
        if isinstance(given.get("system"), (str, list)):
            inputs.append(_openai_message({"role": "system", "content": given["system"]}))
        inputs += [_openai_message(m) for m in _list(given.get("messages")) if isinstance(m, dict)]
    elif isinstance(given, str) and given:
        inputs.append({"role": "user", "parts": [_text(given)]})
    answer = json_value(attributes.get("mlflow.spanOutputs"))
    outputs: list[Message] = []
    if isinstance(answer, dict) and isinstance(answer.get("choices"), list):
        for choice in answer["choices"]:
            if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                message = _openai_message(choice["message"])
                if choice.get("finish_reason"):
                    message["finish_reason"] = choice["finish_reason"]
                outputs.append(message)
    elif isinstance(answer, dict) and isinstance(answer.get("content"), list):
        message = _openai_message({"role": answer.get("role") or "assistant", "content": answer["content"]})
        if answer.get("stop_reason"):
            message["finish_reason"] = answer["stop_reason"]
        outputs.append(message)
    elif isinstance(answer, str) and answer:
        outputs.append({"role": "assistant", "parts": [_text(answer)]})
    return inputs, outputs


# -- shapes --------------------------------------------------------------------------------------


def _semconv_message(message: Any) -> Message:
    if not isinstance(message, dict):
        return {"role": "user", "parts": [_text(_as_text(message))]}
    if "parts" not in message:  # the earlier shape: OpenAI-like ``content`` and ``tool_calls``
        return _openai_message(message)
    made: Message = {
        "role": str(message.get("role") or "user"),
        "parts": [_semconv_part(part) for part in _list(message.get("parts"))],
    }
    if message.get("finish_reason"):
        made["finish_reason"] = message["finish_reason"]
    return made


def _semconv_part(part: Any) -> dict[str, Any]:
    if not isinstance(part, dict):
        return _text(_as_text(part))
    kind = part.get("type")
    if kind == "text" or kind == "reasoning":
        return {"type": kind, "content": _as_text(part.get("content"))}
    if kind == "tool_call":
        return _tool_call(part.get("id"), part.get("name"), part.get("arguments"))
    if kind == "tool_call_response":
        return _tool_result(part.get("id"), part.get("response", part.get("result")))
    if kind in ("uri", "blob", "file", "image") and (part.get("modality") == "image" or kind == "image"):
        if part.get("uri") or part.get("url"):
            return _image(part.get("uri") or part.get("url"))
        if part.get("content"):
            return _image(f"data:{part.get('mime_type') or 'image/png'};base64,{part['content']}")
    return {"type": str(kind or "unknown"), "content": _as_text(part)}


def _openai_message(message: dict[str, Any]) -> Message:
    """OpenAI chat, Anthropic Messages and Vercel AI SDK messages (and GenAI event bodies) alike."""
    role = str(message.get("role") or "user")
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if role == "tool" and (message.get("tool_call_id") or message.get("id")):
        parts.append(_tool_result(message.get("tool_call_id") or message.get("id"), content))
    elif isinstance(content, list):
        parts += [_content_part(block) for block in content]
    elif content is not None and content != "":
        parts.append(_text(_as_text(content)))
    for call in _list(message.get("tool_calls")):
        if isinstance(call, dict):
            function = call["function"] if isinstance(call.get("function"), dict) else call
            parts.append(_tool_call(call.get("id"), function.get("name"), function.get("arguments")))
    return {"role": role, "parts": parts}


def _content_part(block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        return _text(_as_text(block))
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text"):
        return _text(_as_text(block.get("text")))
    if kind == "image_url":
        image = block.get("image_url")
        return _image(image.get("url") if isinstance(image, dict) else image)
    if kind == "image":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "base64":
            return _image(f"data:{source.get('media_type') or 'image/png'};base64,{source.get('data')}")
        if isinstance(source, dict):
            return _image(source.get("url"))
        return _image(block.get("image"))
    if kind in ("tool_use", "tool-call"):
        return _tool_call(
            block.get("id", block.get("toolCallId")),
            block.get("name", block.get("toolName")),
            block.get("input", block.get("args")),
        )
    if kind in ("tool_result", "tool-result"):
        return _tool_result(
            block.get("tool_use_id", block.get("toolCallId")),
            block.get("content", block.get("result", block.get("output"))),
        )
    return {"type": str(kind or "unknown"), "content": _as_text(block)}


def _flat_message(fields: dict[str, Any], default_role: str = "user") -> Message:
    """One ``gen_ai.prompt.N`` / ``gen_ai.completion.N`` message from its flattened fields."""
    content = fields.get("content")
    if isinstance(content, str) and content[:1] == "[":
        decoded = json_value(content)
        content = decoded if isinstance(decoded, list) else content
    message = _openai_message(
        {
            "role": fields.get("role") or default_role,
            "content": content,
            "tool_call_id": fields.get("tool_call_id"),
            "tool_calls": [
                {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("arguments")}
                for call in _indexed(fields, "tool_calls.")
            ],
        }
    )
    if fields.get("finish_reason"):
        message["finish_reason"] = fields["finish_reason"]
    return message


def _openinference_message(fields: dict[str, Any]) -> Message:
    role = str(fields.get("message.role") or "user")
    parts: list[dict[str, Any]] = []
    if role == "tool" and fields.get("message.tool_call_id"):
        parts.append(_tool_result(fields["message.tool_call_id"], fields.get("message.content")))
    elif fields.get("message.content") not in (None, ""):
        parts.append(_text(_as_text(fields["message.content"])))
    for content in _indexed(fields, "message.contents."):
        if content.get("message_content.type") == "image":
            parts.append(_image(content.get("message_content.image.image.url")))
        else:
            parts.append(_text(_as_text(content.get("message_content.text"))))
    for call in _indexed(fields, "message.tool_calls."):
        parts.append(
            _tool_call(
                call.get("tool_call.id"), call.get("tool_call.function.name"), call.get("tool_call.function.arguments")
            )
        )
    return {"role": role, "parts": parts}


def _indexed(attributes: Attributes, prefix: str) -> list[dict[str, Any]]:
    """``prefix + "N." + rest`` keys grouped by N, in order of N: ``[{rest: value}, ...]``."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            if index.isdigit() and rest:
                found.setdefault(int(index), {})[rest] = value
    return [found[index] for index in sorted(found)]


def _list(value: Any) -> list[Any]:
    value = json_value(value)
    return value if isinstance(value, list) else []


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _image(url: Any) -> dict[str, Any]:
    return {"type": "image", "url": url if isinstance(url, str) else ""}


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": json_value(arguments)}


def _tool_result(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": json_value(response)}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, default=str)


GENAI_PREFIXES = (
    "gen_ai.",
    "llm.",
    "openinference.",
    "traceloop.",
    "ai.",
    "mlflow.",
    "input.",
    "output.",
    "session.",
    "user.",
    "enduser.",
    "tool.",
    "embedding.",
    "agent.",
    "langfuse.",
)
"""Where every attribute that :func:`span_genai` reads begins."""


def genai_attributes(attributes: Attributes) -> dict[str, Any]:
    """The attributes :func:`span_genai` reads, out of all a span's."""
    return {key: value for key, value in attributes.items() if key.startswith(GENAI_PREFIXES)}


def span_genai(
    attributes: Attributes, call: StoredCall | None, events: Iterable[tuple[str, Attributes, Any]] = ()
) -> dict[str, Any] | None:
    """A span's ``genai`` view: its LLM facts, for a model call whether it carries the call (``counted``)
    and what it cost (``cost_usd``, both from the store's ``call``), its messages (from its attributes,
    else from GenAI ``events``: ``(name, attributes, body)`` of its span events or log records) and,
    for a tool, its arguments and result;
    ``None`` for a span that says nothing about an LLM app."""
    facts = llm_facts(attributes)
    inputs, outputs = conversation(attributes)
    if not inputs and not outputs:
        inputs, outputs = from_events(event for event in events if event[0] in GENAI_EVENTS)
    if facts.kind is None and not inputs and not outputs:
        return None
    view = {
        **facts.as_json(),
        "counted": call.counted if call is not None and facts.model_call else None,
        "cost_usd": call.cost_usd if call is not None and facts.model_call else None,
        "input_messages": inputs,
        "output_messages": outputs,
    }
    if facts.kind == "tool":
        view["tool_arguments"] = json_value(_first_present(attributes, TOOL_ARGUMENTS))
        view["tool_result"] = json_value(_first_present(attributes, TOOL_RESULT))
    return view


TOOL_ARGUMENTS = (
    "gen_ai.tool.call.arguments",
    "ai.toolCall.args",
    "ai.toolCall.input",
    "input.value",
    "traceloop.entity.input",
    "mlflow.spanInputs",
)
TOOL_RESULT = (
    "gen_ai.tool.call.result",
    "ai.toolCall.result",
    "ai.toolCall.output",
    "output.value",
    "traceloop.entity.output",
    "mlflow.spanOutputs",
)


def _first_present(attributes: Attributes, keys: tuple[str, ...]) -> Any:
    return next((attributes[key] for key in keys if attributes.get(key) is not None), None)
