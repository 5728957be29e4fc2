"""The otel job types (contributed through the jobs plugin's ``plughost_job_types``).

- ``otel.retention``: delete the current workspace's traces that ended more than
  ``days`` days ago, in one project or all, in batches (one transaction each).
- ``otel.export``: write the traces that match a filter (the list API's filters)
  to OTLP/JSON lines, one ``TracesData`` object per trace and line, with hex ids,
  as the OpenTelemetry Collector's file exporter writes them, streamed into the
  job's artifact ``traces.jsonl``; the result gives its download URL
  (``GET /api/jobs/{id}/artifacts/traces.jsonl``).

Both run in a job subprocess, in the job's workspace (``core.context``), with an
engine of their own on the server's database.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.context import current_workspace
from core.database import create_engine, database_url
from plugins.jobs.hookspecs import JobContext, JobType, RetryPolicy

from .logs import LogStore, logs, logs_data
from .present import span_view
from .store import SpanStore, TraceFilter, delete_trace_rows
from .tables import traces

NS_PER_DAY = 86_400 * 1_000_000_000
RETENTION_BATCH = 500
"""Traces deleted per transaction: short transactions, so ingest is never blocked for long."""
EXPORT_PAGE = 200
EXPORT_ARTIFACT = "traces.jsonl"
LOGS_ARTIFACT = "logs.jsonl"
"""Beside the traces: one OTLP/JSON ``LogsData`` per exported trace that has log records."""
TRANSIENT = (OperationalError, InterfaceError, OSError)
"""The database was down or busy: the job is tried again later."""


class Retention(BaseModel):
    days: int = Field(ge=1, description="delete traces whose last span ended more than this many days ago")
    project: str | None = Field(None, description="only this project; all projects when absent")


class Export(BaseModel):
    service: str | None = None
    project: str | None = None
    status: Literal["ok", "error"] | None = None
    start_after: datetime | None = Field(None, description="traces that started at or after (ISO 8601)")
    start_before: datetime | None = Field(None, description="traces that started before (ISO 8601)")
    min_duration_ms: float | None = Field(None, ge=0)
    max_traces: int = Field(100_000, ge=1, description="stop after this many traces, newest first")


@asynccontextmanager
async def job_engine(context: JobContext) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(context.database_url or database_url(None, context.data_dir))
    try:
        yield engine
    finally:
        await engine.dispose()


async def delete_old_traces(params: Retention, context: JobContext) -> dict[str, Any]:
    cutoff_ns = time.time_ns() - params.days * NS_PER_DAY
    workspace = current_workspace()
    old = select(traces.c.trace_id).where(traces.c.workspace == workspace, traces.c.end_ns < cutoff_ns)
    if params.project is not None:
        old = old.where(traces.c.project == params.project)
    deleted_traces = deleted_spans = deleted_logs = 0
    async with job_engine(context) as engine:
        while True:
            async with engine.begin() as connection:
                batch = (await connection.execute(old.limit(RETENTION_BATCH))).scalars().all()
                if not batch:
                    break
                # Checked again: a trace that received a new span since it was selected is kept, with its spans.
                gone = (
                    (
                        await connection.execute(
                            delete(traces)
                            .where(
                                traces.c.workspace == workspace,
                                traces.c.trace_id.in_(batch),
                                traces.c.end_ns < cutoff_ns,
                            )
                            .returning(traces.c.trace_id)
                        )
                    )
                    .scalars()
                    .all()
                )
                deleted_spans += await delete_trace_rows(connection, workspace, gone)
                deleted_logs += (
                    await connection.execute(
                        delete(logs).where(logs.c.workspace == workspace, logs.c.trace_id.in_(gone))
                    )
                ).rowcount
            deleted_traces += len(gone)
        outside_traces = delete(logs).where(  # records outside any trace go by their own time
            logs.c.workspace == workspace, logs.c.trace_id == "", logs.c.time_ns < cutoff_ns
        )
        if params.project is not None:
            outside_traces = outside_traces.where(logs.c.project == params.project)
        async with engine.begin() as connection:
            deleted_logs += (await connection.execute(outside_traces)).rowcount
    return {
        "deleted_traces": deleted_traces,
        "deleted_spans": deleted_spans,
        "deleted_logs": deleted_logs,
        "cutoff": datetime.fromtimestamp(cutoff_ns / 1e9, UTC).isoformat(),
    }


async def export_traces(params: Export, context: JobContext) -> dict[str, Any]:
    where = TraceFilter(
        service=params.service,
        project=params.project,
        status=params.status,
        start_after_ns=_ns(params.start_after),
        start_before_ns=_ns(params.start_before),
        min_duration_ns=None if params.min_duration_ms is None else int(params.min_duration_ms * 1_000_000),
    )
    path = context.artifact_path(EXPORT_ARTIFACT)
    partial = path.with_name(f"{EXPORT_ARTIFACT}.partial")
    logs_path = context.artifact_path(LOGS_ARTIFACT)
    logs_partial = logs_path.with_name(f"{LOGS_ARTIFACT}.partial")
    written = span_count = record_count = 0
    async with job_engine(context) as engine:
        store, log_store = SpanStore(engine), LogStore(engine)
        with partial.open("w", encoding="utf-8") as out, logs_partial.open("w", encoding="utf-8") as logs_out:
            token: str | None = None
            while written < params.max_traces:
                page, token = await store.list_traces(where, min(EXPORT_PAGE, params.max_traces - written), token)
                for summary in page:
                    found = await store.get_trace(summary["trace_id"])
                    if found is None:  # deleted since it was listed
                        continue
                    out.write(json.dumps(traces_data(found[1]), separators=(",", ":")) + "\n")
                    written += 1
                    span_count += len(found[1])
                    records = await log_store.rows_for_trace(current_workspace(), summary["trace_id"])
                    if records:
                        logs_out.write(json.dumps(logs_data(records), separators=(",", ":")) + "\n")
                        record_count += len(records)
                context.progress(None, f"exported {written} traces")
                if token is None:
                    break
    partial.replace(path)  # a retried or killed export never leaves a half file under the final name
    logs_partial.replace(logs_path)
    context.progress(1.0, f"exported {written} traces")
    return {
        "artifact": EXPORT_ARTIFACT,
        "download_url": f"/api/jobs/{context.id}/artifacts/{EXPORT_ARTIFACT}",
        "traces": written,
        "spans": span_count,
        "logs_artifact": LOGS_ARTIFACT,
        "logs_download_url": f"/api/jobs/{context.id}/artifacts/{LOGS_ARTIFACT}",
        "log_records": record_count,
        "bytes": path.stat().st_size,
    }


def traces_data(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One trace's span rows as an OTLP/JSON ``TracesData``, spans grouped by resource and scope."""
    Key = tuple[bytes, str]
    grouped: dict[Key, dict[Key, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    resources: dict[Key, dict[str, Any]] = {}
    scopes: dict[Key, dict[str, Any]] = {}
    for row in rows:
        otlp = span_view(row)["otlp"]
        resource, scope = (row["resource"], row["resource_schema_url"]), (row["scope"], row["scope_schema_url"])
        resources.setdefault(resource, {"resource": otlp["resource"], "schemaUrl": otlp["schemaUrl"]})
        scopes.setdefault(scope, {"scope": otlp["scope"], "schemaUrl": otlp["scopeSchemaUrl"]})
        grouped[resource][scope].append(otlp["span"])
    return {
        "resourceSpans": [
            {
                **resources[resource],
                "scopeSpans": [{**scopes[scope], "spans": found} for scope, found in by_scope.items()],
            }
            for resource, by_scope in grouped.items()
        ]
    }


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)


JOB_TYPES = [
    JobType(
        "otel.retention",
        delete_old_traces,
        Retention,
        description="Delete the workspace's traces that ended more than `days` days ago (one project, or all)",
        timeout_seconds=3600,
        retry=RetryPolicy(max_attempts=3, transient=TRANSIENT, backoff_seconds=30),
    ),
    JobType(
        "otel.export",
        export_traces,
        Export,
        description=(
            "Write the traces matching a filter to an OTLP/JSON lines artifact, traces.jsonl (one TracesData per trace)"
        ),
        timeout_seconds=3600,
        retry=RetryPolicy(max_attempts=3, transient=TRANSIENT, backoff_seconds=30),
    ),
]
