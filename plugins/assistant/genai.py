"""GenAI-aware analysis: LLM calls, tokens, cost, and the patterns that waste them.

Reads the OpenTelemetry GenAI semantic conventions (``gen_ai.*`` span attributes):

- an **LLM call** is a span with ``gen_ai.operation.name`` of ``chat``, ``text_completion``,
  ``generate_content`` or ``embeddings``, or, from instrumentations older than that attribute,
  with ``gen_ai.system``, ``gen_ai.provider.name`` or ``gen_ai.request.model``; agent and tool
  spans (``invoke_agent``, ``execute_tool`` ...) are not LLM calls, so tokens are not counted twice;
- a **tool call** is a span with ``gen_ai.operation.name = execute_tool`` (its tool in
  ``gen_ai.tool.name``).

Findings: slow LLM calls (at least ``slow_llm_call_ms``), repeated identical prompts (retries
when an earlier one failed), and tool-call loops (the same tool, with the same arguments when
they are captured, called again and again under one parent).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from .intervals import union_length
from .settings import ModelPrice

Span = dict[str, Any]

NS_PER_MS = 1_000_000
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
LEGACY_MARKERS = ("gen_ai.system", "gen_ai.provider.name", "gen_ai.request.model")
TOOL_OPERATION = "execute_tool"
TOOL_LOOP_AT_LEAST = 3
PROMPT_KEYS = ("gen_ai.input.messages", "gen_ai.system_instructions", "gen_ai.prompt")
PROMPT_KEY_PREFIX = "gen_ai.prompt."
PROMPT_EVENTS = (
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.content.prompt",
)
VARYING_PREFIXES = ("gen_ai.response.", "gen_ai.usage.output", "gen_ai.completion")
"""Attributes that differ between identical requests (the answer and its usage), left out of a request's identity."""


def is_llm_call(span: Span) -> bool:
    """A model call; not a SERVER span (a gateway's or model server's side of a call that its
    CLIENT span already counts)."""
    if span.get("kind") == "SPAN_KIND_SERVER":
        return False
    attributes = span.get("attributes") or {}
    operation = attributes.get("gen_ai.operation.name")
    if operation is not None:
        return operation in LLM_OPERATIONS
    return any(key in attributes for key in LEGACY_MARKERS)


def is_tool_call(span: Span) -> bool:
    return (span.get("attributes") or {}).get("gen_ai.operation.name") == TOOL_OPERATION


def genai_analysis(
    spans: list[Span], trace_start: int, trace_ns: int, prices: dict[str, ModelPrice], slow_llm_call_ms: float
) -> dict[str, Any] | None:
    """The GenAI section of an analysis, or ``None`` when the trace holds no LLM or tool call."""
    llm = [span for span in spans if is_llm_call(span)]
    tools = [span for span in spans if is_tool_call(span)]
    if not llm and not tools:
        return None
    calls = [
        _call(span, trace_start, prices)
        for span in sorted(llm, key=lambda s: (s["start_time_unix_nano"], s["span_id"]))
    ]
    llm_ns = union_length([(s["start_time_unix_nano"], s["end_time_unix_nano"]) for s in llm])
    priced = [call["cost"] for call in calls if call["cost"] is not None]
    return {
        "llm_calls": calls,
        "llm_call_count": len(calls),
        "tool_call_count": len(tools),
        "models": sorted({call["model"] for call in calls if call["model"]}),
        "input_tokens": sum(call["input_tokens"] or 0 for call in calls),
        "output_tokens": sum(call["output_tokens"] or 0 for call in calls),
        "llm_time_ms": llm_ns / NS_PER_MS,
        "llm_share": round(llm_ns / trace_ns, 4),
        "cost": round(sum(priced), 6) if priced else None,
        "unpriced_models": sorted({call["model"] or "(unknown)" for call in calls if call["cost"] is None})
        if prices
        else [],
        "slow_llm_calls": [
            {**_brief(call), "share": round(call["duration_ms"] * NS_PER_MS / trace_ns, 4)}
            for call in calls
            if call["duration_ms"] >= slow_llm_call_ms
        ],
        "repeated_prompts": _repeated_prompts(llm),
        "tool_loops": _tool_loops(tools),
    }


def _call(span: Span, trace_start: int, prices: dict[str, ModelPrice]) -> dict[str, Any]:
    attributes = span.get("attributes") or {}
    model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
    input_tokens = _int(attributes.get("gen_ai.usage.input_tokens", attributes.get("gen_ai.usage.prompt_tokens")))
    output_tokens = _int(attributes.get("gen_ai.usage.output_tokens", attributes.get("gen_ai.usage.completion_tokens")))
    return {
        "span_id": span["span_id"],
        "name": span["name"],
        "operation": attributes.get("gen_ai.operation.name"),
        "provider": attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system"),
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "start_offset_ms": (span["start_time_unix_nano"] - trace_start) / NS_PER_MS,
        "duration_ms": (span["end_time_unix_nano"] - span["start_time_unix_nano"]) / NS_PER_MS,
        "finish_reasons": attributes.get("gen_ai.response.finish_reasons"),
        "error": span["status"]["code"] == "STATUS_CODE_ERROR",
        "cost": _cost(prices, [model, attributes.get("gen_ai.request.model")], input_tokens, output_tokens),
    }


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _cost(
    prices: dict[str, ModelPrice], models: list[Any], input_tokens: int | None, output_tokens: int | None
) -> float | None:
    """The call's cost from the price table (the response's model first, then the requested one), or ``None``."""
    price = next((prices[m] for m in models if isinstance(m, str) and m in prices), None)
    if price is None or (input_tokens is None and output_tokens is None):
        return None
    return round(((input_tokens or 0) * price.input + (output_tokens or 0) * price.output) / 1_000_000, 6)


def _brief(call: dict[str, Any]) -> dict[str, Any]:
    return {key: call[key] for key in ("span_id", "name", "model", "duration_ms")}


def _identity(span: Span) -> tuple[str, bool]:
    """A fingerprint of what was asked, and whether the prompt itself was captured.

    With the prompt captured (attributes or events), it is the model and the prompt. Without,
    it is the span's name and its attributes other than the answer's (so the input token count
    is part of it: an agent's successive calls grow their input and differ).
    """
    attributes = span.get("attributes") or {}
    prompt = {
        key: value for key, value in attributes.items() if key in PROMPT_KEYS or key.startswith(PROMPT_KEY_PREFIX)
    }
    prompt_events = [
        event.get("attributes") for event in span.get("events") or () if event.get("name") in PROMPT_EVENTS
    ]
    model = attributes.get("gen_ai.request.model") or attributes.get("gen_ai.response.model")
    if prompt or prompt_events:
        content: Any = [model, prompt, prompt_events]
        captured = True
    else:
        request = {
            key: value
            for key, value in attributes.items()
            if key.startswith("gen_ai.") and not key.startswith(VARYING_PREFIXES)
        }
        content, captured = [span["name"], request], False
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return digest, captured


def _repeated_prompts(llm: list[Span]) -> list[dict[str, Any]]:
    groups: dict[str, list[Span]] = defaultdict(list)
    captured: dict[str, bool] = {}
    for span in llm:
        digest, captured[digest] = _identity(span)
        groups[digest].append(span)
    found = []
    for digest, calls in groups.items():
        if len(calls) < 2:
            continue
        calls.sort(key=lambda s: (s["start_time_unix_nano"], s["span_id"]))
        failed_before = any(s["status"]["code"] == "STATUS_CODE_ERROR" for s in calls[:-1])
        attributes = calls[0].get("attributes") or {}
        found.append(
            {
                "kind": "retry" if failed_before else "repeated_prompt",
                "name": calls[0]["name"],
                "model": attributes.get("gen_ai.request.model") or attributes.get("gen_ai.response.model"),
                "count": len(calls),
                "span_ids": [s["span_id"] for s in calls],
                "prompt_captured": captured[digest],
                "total_ms": sum(s["end_time_unix_nano"] - s["start_time_unix_nano"] for s in calls) / NS_PER_MS,
                "input_tokens": sum(
                    _int((s.get("attributes") or {}).get("gen_ai.usage.input_tokens")) or 0 for s in calls
                ),
            }
        )
    return sorted(found, key=lambda f: (-f["count"], f["name"]))


def _tool_loops(tools: list[Span]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Span]] = defaultdict(list)
    for span in tools:
        attributes = span.get("attributes") or {}
        arguments = attributes.get("gen_ai.tool.call.arguments")
        tool = attributes.get("gen_ai.tool.name") or span["name"]
        groups[(span["parent_span_id"], tool, json.dumps(arguments, sort_keys=True, default=str))].append(span)
    found = []
    for (parent, tool, _), calls in groups.items():
        if len(calls) < TOOL_LOOP_AT_LEAST:
            continue
        calls.sort(key=lambda s: (s["start_time_unix_nano"], s["span_id"]))
        found.append(
            {
                "tool": tool,
                "parent_span_id": parent,
                "count": len(calls),
                "same_arguments": (calls[0].get("attributes") or {}).get("gen_ai.tool.call.arguments") is not None,
                "span_ids": [s["span_id"] for s in calls],
                "total_ms": sum(s["end_time_unix_nano"] - s["start_time_unix_nano"] for s in calls) / NS_PER_MS,
            }
        )
    return sorted(found, key=lambda f: (-f["count"], f["tool"]))
