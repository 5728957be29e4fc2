"""The ``assistant.batch_analysis`` job: analyse the traces that match a filter into one report.

The job runs in a jobs subprocess (on the server's machine, or a worker's of ``python -m core jobs
worker``), which has no app. It builds the host from the job's database and the environment
(``core.factory.build_host``) and reads the stored traces in-process, through the otel plugin's
trace reader (``plughost_trace_reader``): the list API's filters (``TraceQuery``), then each
match's columns, in the job's workspace. No HTTP and no credentials: the job reads the same
database the server does, whatever authentication the server requires of its clients.

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

from pydantic import BaseModel, Field, field_validator, model_validator

from core import run_bulk
from core.factory import build_host
from core.settings import CoreSettings, load_plugin_settings
from plugins.otel.hookspecs import TraceQuery, TraceReader

from .analysis import analyse_columns
from .report import error_detail
from .settings import Settings

if TYPE_CHECKING:
    from plugins.jobs.hookspecs import JobContext

PAGE = 1000
"""Trace summaries listed at a time."""
TOP = 10
SHORT = 160
"""Longest name or message in a report entry."""
OWN_FILTERS = frozenset(
    {"service", "project", "status", "start_after", "start_before", "min_duration_ms", "limit", "page_token"}
)
EXTRA_FILTERS = ("name", "model", "min_tokens", "session")
"""The list API's filters beside the job's own fields, and ``attr.<key>``."""
ATTRIBUTE_FILTER = re.compile(r"^attr\.[\w.\-]{1,200}$")


class BatchAnalysis(BaseModel):
    """Which traces to analyse: the list API's filters, a window relative to the run, and a cap."""

    # Field descriptions, not attribute docstrings (``use_attribute_docstrings``): pydantic finds those through
    # ``inspect.getmodule``, which walks every loaded module, 60 ms of the server's start-up.
    service: str | None = Field(None, description="Only traces of this service (`service.name`).")
    project: str | None = Field(
        None, description="Only traces of this project (the `X-Plughost-Project` header they were sent with)."
    )
    status: Literal["ok", "error"] | None = Field(
        None, description="Only traces that failed (`error`) or did not (`ok`)."
    )
    last_minutes: float | None = Field(
        None,
        gt=0,
        le=366 * 24 * 60,
        description="Traces that started in the last N minutes before the job runs "
        "(a schedule's window moves with it).",
    )
    start_after: datetime | None = Field(None, description="Traces that started at or after this time.")
    start_before: datetime | None = Field(None, description="Traces that started before this time.")
    min_duration_ms: float | None = Field(None, ge=0, description="Traces that lasted at least this long.")
    filters: dict[str, str] = Field(
        {},
        description="More filters of the trace list (``GET /api/otel/traces``): `name`, `model`, `min_tokens`, "
        '`session` or `attr.<key>`, such as ``{"attr.gen_ai.request.model": "gpt-4o"}``.',
    )
    max_traces: int = Field(
        100,
        ge=1,
        le=500,
        description="At most this many traces, newest first; the report says when more matched. (Entries are "
        "compact, about 1 KiB, so that the report stays under the jobs plugin's 1 MiB result limit.)",
    )

    @field_validator("filters")
    @classmethod
    def _extra_filters(cls, filters: dict[str, str]) -> dict[str, str]:
        for name, value in filters.items():
            if name in OWN_FILTERS:
                raise ValueError(f"{name!r} has its own field; give it there")
            if name not in EXTRA_FILTERS and not ATTRIBUTE_FILTER.match(name):
                raise ValueError(
                    f"{name!r} is not a trace-list filter name (attr.<key>, or one of {', '.join(EXTRA_FILTERS)})"
                )
            if name == "min_tokens" and not value.isdigit():
                raise ValueError(f"min_tokens must be a whole number of tokens, not {value!r}")
        return filters

    @model_validator(mode="after")
    def _one_window_start(self) -> BatchAnalysis:
        if self.last_minutes is not None and self.start_after is not None:
            raise ValueError("give last_minutes or start_after, not both")
        return self

    def query(self, now: datetime) -> dict[str, str]:
        """The filter as the trace list's query parameters (the report says which traces it covers)."""
        start_after = self._start_after(now)
        fields = {
            "service": self.service,
            "project": self.project,
            "status": self.status,
            "min_duration_ms": self.min_duration_ms,
            "start_after": start_after.isoformat() if start_after else None,
            "start_before": self.start_before.isoformat() if self.start_before else None,
        }
        return {**{name: str(value) for name, value in fields.items() if value is not None}, **self.filters}

    def trace_query(self, now: datetime) -> TraceQuery:
        """The filter for the trace reader."""
        extra = self.filters
        return TraceQuery(
            service=self.service,
            project=self.project,
            status=self.status,
            start_after=self._start_after(now),
            start_before=self.start_before,
            min_duration_ms=self.min_duration_ms,
            name=extra.get("name"),
            model=extra.get("model"),
            min_tokens=int(extra["min_tokens"]) if "min_tokens" in extra else None,
            session=extra.get("session"),
            attributes={name.removeprefix("attr."): value for name, value in extra.items() if name.startswith("attr.")},
        )

    def _start_after(self, now: datetime) -> datetime | None:
        return now - timedelta(minutes=self.last_minutes) if self.last_minutes is not None else self.start_after


async def batch_analysis(params: BatchAnalysis, job: JobContext) -> dict[str, Any]:
    """The job function: list the matching traces, analyse each, and sum the findings up."""
    settings: Settings = load_plugin_settings("assistant", Settings, os.environ)  # type: ignore[assignment]
    now = datetime.now(UTC)
    reports, too_big = [], []
    host = build_host(CoreSettings(database_url=job.database_url, data_dir=job.data_dir))
    try:
        reader = getattr(host.plugins.manager.hook, "plughost_trace_reader", lambda host: None)(host=host)
        if reader is None:
            raise RuntimeError("no trace source: enable the otel plugin (PLUGHOST_PLUGINS) where jobs run")
        summaries, more = await _matching(reader, params.trace_query(now), params.max_traces, job.workspace)
        for done, summary in enumerate(summaries, start=1):
            if summary["span_count"] > settings.max_spans:  # as the analyze route refuses it
                too_big.append({"trace_id": summary["trace_id"], "span_count": summary["span_count"]})
            elif (columns := await reader.columns(summary["trace_id"], workspace=job.workspace)) is not None:
                analysis = await run_bulk(analyse_columns, columns, settings)  # else deleted since it was listed
                reports.append(trace_report(summary, analysis))
            job.progress(done / len(summaries), f"analysed {done} of {len(summaries)} traces")
    finally:
        await host.close()
    return {
        "filter": params.query(now),
        "matched_more_than_analysed": more,
        "aggregate": aggregate(reports),
        "traces": reports,
        "too_big": too_big,
    }


async def _matching(
    reader: TraceReader, query: TraceQuery, limit: int, workspace: str
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` trace summaries, newest first, and whether more matched."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    while len(found) < limit:
        page = await reader.list_traces(
            query, limit=min(PAGE, limit - len(found)), page_token=token, workspace=workspace
        )
        found.extend(page["traces"])
        token = page["next_page_token"]
        if not token:
            return found, False
    return found[:limit], True


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
