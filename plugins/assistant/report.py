"""The analysis as a short readable report: the text answer, and what the LLM is given."""

from __future__ import annotations

from typing import Any

from .analysis import PATH_IN_TEXT


def as_text(analysis: dict[str, Any]) -> str:
    lines = [f"Trace {analysis['trace_id']}: {analysis['duration_ms']:.1f} ms, {analysis['span_count']} spans."]
    lines.append(_path_line(analysis))
    lines.append("Slowest by own time: " + "; ".join(_slow(s) for s in analysis["slowest_spans"]))
    for error in analysis["errors"]:
        lines.append(f"Error in {error['name']} ({error['service_name']}): {error_detail(error)}")
    for repeat in analysis["repeated_calls"]:
        under = repeat["parent_name"] or "the root"
        if repeat["parents"] > 1:
            under = f"{repeat['parents']} spans named {under}"
        lines.append(
            f"Repeated: {repeat['name']} called {repeat['count']} times under {under} "
            f"({repeat['total_ms']:.1f} ms in all; an N+1 pattern?)"
        )
    for gap in analysis["gaps"]:
        lines.append(
            f"Gap: nothing ran for {gap['duration_ms']:.1f} ms at +{gap['start_offset_ms']:.1f} ms "
            f"inside {gap['inside']}"
        )
    if analysis["genai"] is not None:
        lines.extend(_genai_lines(analysis["genai"]))
    return "\n".join(lines)


def error_detail(error: dict[str, Any]) -> str:
    """An error finding's status message and exceptions, in one line."""
    return "; ".join(filter(None, [error["message"], *error["exceptions"]])) or "no message"


def _slow(group: dict[str, Any]) -> str:
    if group["count"] == 1:
        return f"{group['name']} {group['self_ms']:.1f} ms ({group['share']:.0%})"
    return (
        f"{group['name']} x{group['count']} {group['self_ms']:.1f} ms in all ({group['share']:.0%}), "
        f"at most {group['max_ms']:.1f} ms"
    )


def _path_line(analysis: dict[str, Any]) -> str:
    if analysis["sequential"]:
        return (
            f"Sequential: nothing ran in parallel, so the critical path is the whole trace "
            f"({analysis['critical_path_ms']:.1f} ms)."
        )
    path = analysis["critical_path"]
    count = analysis["critical_path_segments"]
    if count > PATH_IN_TEXT:
        most = ", ".join(
            f"{c['name']} {c['share']:.0%} ({c['segments']} segments)" for c in analysis["critical_path_contributors"]
        )
        return f"Critical path ({analysis['critical_path_ms']:.1f} ms, {count} segments), mostly: {most}"
    steps = " -> ".join(f"{s['name']} {s['duration_ms']:.1f} ms" for s in path)
    return f"Critical path ({analysis['critical_path_ms']:.1f} ms): {steps}"


def _genai_lines(genai: dict[str, Any]) -> list[str]:
    cost = f", cost ${genai['cost']:.6f}" if genai["cost"] is not None else ""
    lines = [
        f"LLM: {genai['llm_call_count']} calls ({', '.join(genai['models']) or 'model unknown'}), "
        f"{genai['input_tokens']} input and {genai['output_tokens']} output tokens, "
        f"{genai['llm_time_ms']:.1f} ms in LLM calls ({genai['llm_share']:.0%} of the trace){cost}; "
        f"{genai['tool_call_count']} tool calls."
    ]
    if genai["unpriced_models"]:
        lines.append(f"No price for: {', '.join(genai['unpriced_models'])}")
    for call in genai["slow_llm_calls"]:
        lines.append(
            f"Slow LLM call: {call['name']} ({call['model'] or 'model unknown'}) "
            f"took {call['duration_ms']:.1f} ms ({call['share']:.0%} of the trace)"
        )
    for repeat in genai["repeated_prompts"]:
        what = "Retried" if repeat["kind"] == "retry" else "Repeated identical prompt"
        basis = "same prompt" if repeat["prompt_captured"] else "same request attributes; prompt not captured"
        lines.append(
            f"{what}: {repeat['name']} ({repeat['model'] or 'model unknown'}) "
            f"sent {repeat['count']} times ({basis}), {repeat['total_ms']:.1f} ms in all"
        )
    for loop in genai["tool_loops"]:
        arguments = " with the same arguments" if loop["same_arguments"] else ""
        lines.append(
            f"Tool-call loop: {loop['tool']} called {loop['count']} times{arguments} under one parent "
            f"({loop['total_ms']:.1f} ms in all)"
        )
    return lines
