"""GenAI-aware analysis: LLM calls, tokens, cost, and the patterns that waste them.

Reads each span's ``genai`` view, which the otel plugin gives with the trace (one reading of
every convention it knows, so the trace list and this analysis agree):

- an **LLM call** is a span of kind ``llm`` or ``embedding`` that carries its call
  (``counted``: when a call is traced at several levels, a client's span around a gateway's,
  only one of them counts, and only its tokens), and costs what the trace store priced it at
  (``cost_usd``, see ``core.pricing``: the same price as the trace list's);
- a **tool call** is a span of kind ``tool``.

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

Span = dict[str, Any]

NS_PER_MS = 1_000_000
MODEL_CALLS = frozenset({"llm", "embedding"})
TOOL_LOOP_AT_LEAST = 3


def _genai(span: Span) -> dict[str, Any]:
    return span.get("genai") or {}


def is_llm_call(span: Span) -> bool:
    """A model call that carries its call (see the otel plugin's counting rule)."""
    genai = _genai(span)
    return genai.get("kind") in MODEL_CALLS and genai.get("counted") is not False


def is_tool_call(span: Span) -> bool:
    return _genai(span).get("kind") == "tool"


def genai_analysis(
    spans: list[Span], trace_start: int, trace_ns: int, slow_llm_call_ms: float
) -> dict[str, Any] | None:
    """The GenAI section of an analysis, or ``None`` when the trace holds no LLM or tool call."""
    facts = [span for span in spans if span.get("genai")]  # most spans of a big trace have none
    llm = [span for span in facts if is_llm_call(span)]
    tools = [span for span in facts if is_tool_call(span)]
    if not llm and not tools:
        return None
    calls = [_call(span, trace_start) for span in sorted(llm, key=lambda s: (s["start_time_unix_nano"], s["span_id"]))]
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
        "cost": sum(priced) if priced else None,
        "unpriced_models": sorted({call["model"] or "(unknown)" for call in calls if call["cost"] is None}),
        "slow_llm_calls": [
            {**_brief(call), "share": round(call["duration_ms"] * NS_PER_MS / trace_ns, 4)}
            for call in calls
            if call["duration_ms"] >= slow_llm_call_ms
        ],
        "repeated_prompts": _repeated_prompts(llm),
        "tool_loops": _tool_loops(tools),
    }


def _call(span: Span, trace_start: int) -> dict[str, Any]:
    genai = _genai(span)
    input_tokens, output_tokens = genai.get("input_tokens"), genai.get("output_tokens")
    return {
        "span_id": span["span_id"],
        "name": span["name"],
        "operation": genai.get("kind"),
        "provider": genai.get("provider"),
        "model": genai.get("model"),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "start_offset_ms": (span["start_time_unix_nano"] - trace_start) / NS_PER_MS,
        "duration_ms": (span["end_time_unix_nano"] - span["start_time_unix_nano"]) / NS_PER_MS,
        "finish_reasons": genai.get("finish_reasons") or None,
        "error": span["status"]["code"] == "STATUS_CODE_ERROR",
        "cost": genai.get("cost_usd"),
    }


def _brief(call: dict[str, Any]) -> dict[str, Any]:
    return {key: call[key] for key in ("span_id", "name", "model", "duration_ms")}


def _identity(span: Span) -> tuple[str, bool]:
    """A fingerprint of what was asked, and whether the prompt itself was captured.

    With the prompt captured, it is the model and the input messages. Without, it is the span's
    name, the model asked for and the input token count (an agent's successive calls grow their
    input and differ).
    """
    genai = _genai(span)
    model = genai.get("request_model") or genai.get("model")
    messages = genai.get("input_messages")
    if messages:
        content: Any = [model, messages]
    else:
        content = [span["name"], model, genai.get("input_tokens")]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return digest, bool(messages)


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
        found.append(
            {
                "kind": "retry" if failed_before else "repeated_prompt",
                "name": calls[0]["name"],
                "model": _genai(calls[0]).get("request_model") or _genai(calls[0]).get("model"),
                "count": len(calls),
                "span_ids": [s["span_id"] for s in calls],
                "prompt_captured": captured[digest],
                "total_ms": sum(s["end_time_unix_nano"] - s["start_time_unix_nano"] for s in calls) / NS_PER_MS,
                "input_tokens": sum(_genai(s).get("input_tokens") or 0 for s in calls),
            }
        )
    return sorted(found, key=lambda f: (-f["count"], f["name"]))


def _tool_loops(tools: list[Span]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Span]] = defaultdict(list)
    for span in tools:
        arguments = _genai(span).get("tool_arguments")
        tool = _genai(span).get("tool_name") or span["name"]
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
                "same_arguments": _genai(calls[0]).get("tool_arguments") is not None,
                "span_ids": [s["span_id"] for s in calls],
                "total_ms": sum(s["end_time_unix_nano"] - s["start_time_unix_nano"] for s in calls) / NS_PER_MS,
            }
        )
    return sorted(found, key=lambda f: (-f["count"], f["tool"]))
