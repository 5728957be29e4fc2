"""One agent tool loop per SDK: the model asks for a tool, the client runs it and sends the result back."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def run_tool(arguments: dict[str, Any]) -> str:
    return f"sunny in {arguments['city']}"


def openai_loop(base: str, endpoint: str, stream: bool) -> tuple[Any, Any]:
    """(first answer's message, final answer's message) through the OpenAI SDK."""
    client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="unused", max_retries=0)
    tools = [
        {
            "type": "function",
            "function": {
                "name": WEATHER["name"],
                "description": WEATHER["description"],
                "parameters": WEATHER["schema"],
            },
        }
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Paris"}]

    def ask() -> Any:
        if not stream:
            return client.chat.completions.create(model=endpoint, messages=messages, tools=tools).choices[0]
        with client.chat.completions.stream(model=endpoint, messages=messages, tools=tools) as events:
            return events.get_final_completion().choices[0]

    first = ask()
    assert first.finish_reason == "tool_calls", first
    calls = first.message.tool_calls
    messages.append(
        {
            "role": "assistant",
            "content": first.message.content,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        }
    )
    messages.extend(
        {"role": "tool", "tool_call_id": c.id, "content": run_tool(json.loads(c.function.arguments))} for c in calls
    )
    final = ask()
    assert final.finish_reason == "stop", final
    return first.message, final.message


def anthropic_loop(base: str, endpoint: str, stream: bool) -> tuple[Any, Any]:
    """(first answer, final answer) through the Anthropic SDK."""
    client = anthropic.Anthropic(base_url=f"{base}/gateway/anthropic", api_key="unused", max_retries=0)
    tools = [{"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["schema"]}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Paris"}]

    def ask() -> Any:
        if not stream:
            return client.messages.create(model=endpoint, max_tokens=256, messages=messages, tools=tools)
        with client.messages.stream(model=endpoint, max_tokens=256, messages=messages, tools=tools) as events:
            return events.get_final_message()

    first = ask()
    assert first.stop_reason == "tool_use", first
    messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
    uses = [block for block in first.content if block.type == "tool_use"]
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": u.id, "content": run_tool(u.input)} for u in uses],
        }
    )
    final = ask()
    assert final.stop_reason == "end_turn", final
    return first, final


def text_of(answer: Any) -> str:
    """The text of a final answer of either SDK."""
    if hasattr(answer, "stop_reason"):
        return "".join(block.text for block in answer.content if block.type == "text")
    return str(answer.content)


def tool_arguments(answer: Any) -> list[dict[str, Any]]:
    """The arguments of each tool call in a first answer of either SDK."""
    if hasattr(answer, "stop_reason"):
        return [block.input for block in answer.content if block.type == "tool_use"]
    return [json.loads(call.function.arguments) for call in answer.tool_calls]
