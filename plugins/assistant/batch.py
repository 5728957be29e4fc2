"""The ``assistant.batch_analysis`` job: analyse the traces that match a filter into one report.

The job runs in a jobs subprocess, which has no app and no trace store of its own. It reads
traces through the server's public HTTP API, the same one the console uses:
``GET /api/otel/traces`` with the filter (so every filter of that API works here too, the
attribute and model filters included) and ``GET /api/otel/traces/{id}`` for each match, in the
job's workspace (``X-Plughost-Workspace``). The server is ``PLUGHOST_ASSISTANT_API_URL``, or
this machine's on ``PLUGHOST_PORT``, which ``serve`` exports to its job processes;
when the server requires ``PLUGHOST_SECURITY_TOKEN``, the job sends it from the same environment.

The result is the report: the matched traces' findings, one compact entry per trace, and an
aggregate over all of them.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core import run_bulk
from core.settings import load_plugin_settings

from .analysis import analyse
from .report import error_detail
from .settings import Settings

if TYPE_CHECKING:
    from plugins.jobs.hookspecs import JobContext

PAGE = 1000
"""The list API's largest page."""
TOP = 10
SHORT = 160
"""Longest name or message in a report entry."""
OWN_FILTERS = frozenset(
    {"service", "project", "status", "start_after", "start_before", "min_duration_ms", "limit", "page_token"}
)
EXTRA_FILTER = re.compile(r"^(attr\.[\w.\-]{1,200}|[a-z][a-z_]{0,63})$")


class BatchAnalysis(BaseModel):
    """Which traces to analyse: the list API's filters, a window relative to the run, and a cap."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the field docstrings describe the form's fields

    service: str | None = None
    """Only traces of this service (`service.name`)."""
    project: str | None = None
    """Only traces of this project (the `X-Plughost-Project` header they were sent with)."""
    status: Literal["ok", "error"] | None = None
    """Only traces that failed (`error`) or did not (`ok`)."""
    last_minutes: float | None = Field(None, gt=0, le=366 * 24 * 60)
    """Traces that started in the last N minutes before the job runs (a schedule's window moves with it)."""
    start_after: datetime | None = None
    """Traces that started at or after this time."""
    start_before: datetime | None = None
    """Traces that started before this time."""
    min_duration_ms: float | None = Field(None, ge=0)
    """Traces that lasted at least this long."""
    filters: dict[str, str] = {}
    """More query parameters of ``GET /api/otel/traces``, such as ``{"attr.gen_ai.request.model": "gpt-4o"}``."""
    max_traces: int = Field(100, ge=1, le=500)
    """At most this many traces, newest first; the report says when more matched. (Entries are
    compact, about 1 KiB, so that the report stays under the jobs plugin's 1 MiB result limit.)"""

    @field_validator("filters")
    @classmethod
    def _extra_filters(cls, filters: dict[str, str]) -> dict[str, str]:
        for name in filters:
            if name in OWN_FILTERS:
                raise ValueError(f"{name!r} has its own field; give it there")
            if not EXTRA_FILTER.match(name):
                raise ValueError(f"{name!r} is not a trace-list filter name (attr.<key>, or lowercase letters and '_')")
        return filters

    @model_validator(mode="after")
    def _one_window_start(self) -> BatchAnalysis:
        if self.last_minutes is not None and self.start_after is not None:
            raise ValueError("give last_minutes or start_after, not both")
        return self

    def query(self, now: datetime) -> dict[str, str]:
        start_after = now - timedelta(minutes=self.last_minutes) if self.last_minutes is not None else self.start_after
        fields = {
            "service": self.service,
            "project": self.project,
            "status": self.status,
            "min_duration_ms": self.min_duration_ms,
            "start_after": start_after.isoformat() if start_after else None,
            "start_before": self.start_before.isoformat() if self.start_before else None,
        }
        return {**{name: str(value) for name, value in fields.items() if value is not None}, **self.filters}


async def batch_analysis(params: BatchAnalysis, job: JobContext) -> dict[str, Any]:
    """The job function: list the matching traces, analyse each, and sum the findings up."""
    settings: Settings = load_plugin_settings("assistant", Settings, os.environ)  # type: ignore[assignment]
    headers = {"X-Plughost-Workspace": job.workspace}
    token = os.environ.get("PLUGHOST_SECURITY_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    window = params.query(datetime.now(UTC))
    reports = []
    api_url = settings.api_url or f"http://127.0.0.1:{os.environ.get('PLUGHOST_PORT', '5000')}"
    async with aiohttp.ClientSession(api_url, headers=headers, timeout=aiohttp.ClientTimeout(total=300)) as client:
        summaries, more = await _matching(client, window, params.max_traces)
        for done, summary in enumerate(summaries, start=1):
            trace = await _get(client, f"/api/otel/traces/{summary['trace_id']}", {})
            if trace is not None:  # else deleted since it was listed
                analysis = await run_bulk(analyse, trace, settings)
                reports.append(trace_report(summary, analysis))
            job.progress(done / len(summaries), f"analysed {done} of {len(summaries)} traces")
    return {"filter": window, "matched_more_than_analysed": more, "aggregate": aggregate(reports), "traces": reports}


async def _matching(
    client: aiohttp.ClientSession, query: dict[str, str], limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` trace summaries, newest first, and whether more matched."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    while len(found) < limit:
        page = await _get(
            client,
            "/api/otel/traces",
            {**query, "limit": str(min(PAGE, limit - len(found))), **({"page_token": token} if token else {})},
        )
        if page is None:
            raise RuntimeError(
                "GET /api/otel/traces answered 404: is the otel plugin enabled on PLUGHOST_ASSISTANT_API_URL?"
            )
        found.extend(page["traces"])
        token = page["next_page_token"]
        if not token:
            return found, False
    return found[:limit], True


async def _get(client: aiohttp.ClientSession, path: str, query: dict[str, str]) -> dict[str, Any] | None:
    """The JSON answer; ``None`` for 404; a ``RuntimeError`` saying what the server said otherwise."""
    async with client.get(path, params=query) as response:
        if response.status == 404:
            return None
        if response.status != 200:
            detail = (await response.text())[:500]
            raise RuntimeError(f"GET {path} answered {response.status}: {detail}")
        return await response.json()  # type: ignore[no-any-return]


def trace_report(summary: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """One trace's findings, compact: the report holds many."""
    genai = analysis["genai"]
    return {
        "trace_id": analysis["trace_id"],
        "root_name": summary.get("root_name"),
        "service_name": summary.get("service_name"),
        "status": summary.get("status"),
        "duration_ms": analysis["duration_ms"],
        "span_count": analysis["span_count"],
        "critical_path": [
            {"name": c["name"], "on_path_ms": c["duration_ms"]} for c in analysis["critical_path_contributors"][:3]
        ],
        "errors": [{"name": _short(e["name"]), "message": _short(error_detail(e))} for e in analysis["errors"][:3]],
        "error_count": len(analysis["errors"]),
        "repeated_calls": [{"name": r["name"], "count": r["count"]} for r in analysis["repeated_calls"]],
        "gap_ms": sum(g["duration_ms"] for g in analysis["gaps"]),
        "genai": None
        if genai is None
        else {
            "llm_call_count": genai["llm_call_count"],
            "tool_call_count": genai["tool_call_count"],
            "models": genai["models"],
            "input_tokens": genai["input_tokens"],
            "output_tokens": genai["output_tokens"],
            "llm_share": genai["llm_share"],
            "cost": genai["cost"],
            "slow_llm_calls": len(genai["slow_llm_calls"]),
            "retries": sum(r["kind"] == "retry" for r in genai["repeated_prompts"]),
            "repeated_prompts": sum(r["kind"] == "repeated_prompt" for r in genai["repeated_prompts"]),
            "tool_loops": [{"tool": loop["tool"], "count": loop["count"]} for loop in genai["tool_loops"]],
        },
    }


def aggregate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What the traces have in common: where their time goes, what fails, what repeats, what the LLMs cost."""
    on_path: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    repeated: Counter[str] = Counter()
    tokens: dict[str, int] = {"input": 0, "output": 0}
    costs = []
    genai_counts: Counter[str] = Counter()
    for report in reports:
        for step in report["critical_path"]:
            on_path[step["name"]] += step["on_path_ms"]
        errors.update(f"{e['name']}: {e['message']}" for e in report["errors"])
        repeated.update(r["name"] for r in report["repeated_calls"])
        genai = report["genai"]
        if genai is not None:
            tokens["input"] += genai["input_tokens"]
            tokens["output"] += genai["output_tokens"]
            if genai["cost"] is not None:
                costs.append(genai["cost"])
            genai_counts.update(
                {
                    "traces_with_llm_calls": genai["llm_call_count"] > 0,
                    "llm_calls": genai["llm_call_count"],
                    "slow_llm_calls": genai["slow_llm_calls"],
                    "retries": genai["retries"],
                    "repeated_prompts": genai["repeated_prompts"],
                    "tool_loops": len(genai["tool_loops"]),
                }
            )
    durations = sorted(report["duration_ms"] for report in reports)
    return {
        "traces": len(reports),
        "error_traces": sum(report["status"] == "error" for report in reports),
        "duration_ms": {
            "p50": _quantile(durations, 0.5),
            "p95": _quantile(durations, 0.95),
            "max": durations[-1] if durations else None,
        },
        "critical_path_by_name": [{"name": name, "on_path_ms": round(ms, 3)} for name, ms in on_path.most_common(TOP)],
        "errors": [{"error": text, "traces": count} for text, count in errors.most_common(TOP)],
        "repeated_calls": [{"name": name, "traces": count} for name, count in repeated.most_common(TOP)],
        "genai": {
            **{
                key: int(genai_counts[key])
                for key in (
                    "traces_with_llm_calls",
                    "llm_calls",
                    "slow_llm_calls",
                    "retries",
                    "repeated_prompts",
                    "tool_loops",
                )
            },
            "input_tokens": tokens["input"],
            "output_tokens": tokens["output"],
            "cost": round(sum(costs), 6) if costs else None,
        },
    }


def _short(text: str) -> str:
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def _quantile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
