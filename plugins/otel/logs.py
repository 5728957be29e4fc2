"""OTLP log records: decoded to rows, stored (SQLite or PostgreSQL), read back with their trace.

A record is tied to its span by trace and span id (either may be empty: a log outside any
trace). The same record sent twice is stored once: it is keyed by a digest of its resource,
scope and record bytes. GenAI events among them (``gen_ai.user.message``, ``gen_ai.choice``,
``gen_ai.client.inference.operation.details``...) become their call's messages (see
:mod:`.conversation`); the others are listed as their span's logs.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.context import current_workspace
from core.database import on_conflict_insert

from .decode import INT64_MAX, Decoded
from .present import any_value, attributes
from .store import Stored, insert_all
from .tables import metadata

EVENT_NAME_ATTRIBUTE = "event.name"
"""Where records name their event before OTLP's ``event_name`` field (the SDKs' older releases)."""
ROWS_PER_STATEMENT = 2000
"""13 columns x 2000 rows: under PostgreSQL's 32,767 bind parameters."""

logs = Table(
    "plughost_otel_logs",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("record_id", String(32), primary_key=True),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("severity_number", Integer, nullable=False),
    Column("event_name", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("resource", LargeBinary, nullable=False),
    Column("scope", LargeBinary, nullable=False),
    Index("plughost_otel_logs_trace", "workspace", "trace_id", "span_id"),
    Index("plughost_otel_logs_time", "workspace", "time_ns"),
)


def log_rows(request: ExportLogsServiceRequest, *, workspace: str, project: str) -> Decoded:
    """One row per valid log record; invalid ones are counted and described, not stored."""
    rows: list[dict[str, Any]] = []
    rejected = 0
    reasons: list[str] = []
    for resource_logs in request.resource_logs:
        resource = resource_logs.resource
        service = next((a.value.string_value for a in resource.attributes if a.key == "service.name"), "")
        resource_bytes = resource.SerializeToString()
        for scope_logs in resource_logs.scope_logs:
            scope_bytes = scope_logs.scope.SerializeToString()
            for record in scope_logs.log_records:
                event = record.event_name or next(
                    (a.value.string_value for a in record.attributes if a.key == EVENT_NAME_ATTRIBUTE), ""
                )
                problem = _invalid(record, event, service or "unknown_service", project)
                if problem:
                    rejected += 1
                    if len(reasons) < 5:
                        reasons.append(problem)
                    continue
                record_bytes = record.SerializeToString()
                digest = hashlib.blake2b(digest_size=16)
                for part in (resource_bytes, scope_bytes, record_bytes):
                    digest.update(len(part).to_bytes(8, "big"))
                    digest.update(part)
                rows.append(
                    {
                        "workspace": workspace,
                        "record_id": digest.hexdigest(),
                        "trace_id": record.trace_id.hex(),
                        "span_id": record.span_id.hex(),
                        "time_ns": record.time_unix_nano or record.observed_time_unix_nano,
                        "severity_number": record.severity_number,
                        "event_name": event,
                        "service_name": service or "unknown_service",
                        "project": project,
                        "record": record_bytes,
                        "resource": resource_bytes,
                        "scope": scope_bytes,
                    }
                )
    return Decoded(rows, rejected, reasons)


def _invalid(record: LogRecord, event: str, service: str, project: str) -> str:
    if len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
        return "log record: trace_id must be 16 bytes and span_id 8 bytes, or empty"
    if max(record.time_unix_nano, record.observed_time_unix_nano) > INT64_MAX:
        return f"log record: times past {INT64_MAX} ns (year 2262) cannot be stored"
    if "\0" in event or "\0" in service or "\0" in project:
        return f"log record {event[:80]!r}: a NUL character in the event name, service or project cannot be stored"
    return ""


def log_view(row: dict[str, Any]) -> dict[str, Any]:
    """The API view of a stored log record."""
    record = LogRecord.FromString(row["record"])
    scope = InstrumentationScope.FromString(row["scope"])
    return {
        "trace_id": row["trace_id"] or None,
        "span_id": row["span_id"] or None,
        "time_unix_nano": row["time_ns"],
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "event_name": row["event_name"] or None,
        "body": any_value(record.body),
        "attributes": attributes(record.attributes),
        "service_name": row["service_name"],
        "resource": {"attributes": attributes(Resource.FromString(row["resource"]).attributes)},
        "scope": {"name": scope.name, "version": scope.version},
    }


def logs_data(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Log rows as an OTLP/JSON ``LogsData`` (hex ids), records grouped by resource and scope."""
    grouped: dict[bytes, dict[bytes, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        record = json_format.MessageToDict(LogRecord.FromString(row["record"]))
        for key in ("traceId", "spanId"):
            if key in record:
                record[key] = base64.b64decode(record[key]).hex()
        grouped[row["resource"]][row["scope"]].append(record)
    return {
        "resourceLogs": [
            {
                "resource": json_format.MessageToDict(Resource.FromString(resource)),
                "scopeLogs": [
                    {"scope": json_format.MessageToDict(InstrumentationScope.FromString(scope)), "logRecords": found}
                    for scope, found in by_scope.items()
                ],
            }
            for resource, by_scope in grouped.items()
        ]
    }


def by_span(views: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Log views grouped by the span they belong to."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for view in views:
        if view["span_id"]:
            grouped[view["span_id"]].append(view)
    return grouped


class LogStore:
    """Log records in SQL, every read and write scoped by workspace."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = on_conflict_insert(logs, engine.dialect.name).on_conflict_do_nothing()

    async def add(self, rows: list[dict[str, Any]]) -> Stored:
        """Store log records (the same record twice: once); returns once they are committed."""
        return await insert_all(self.engine, self._insert, rows, ROWS_PER_STATEMENT)

    async def rows_for_trace(self, workspace: str, trace_id: str) -> list[dict[str, Any]]:
        """The trace's stored log rows, in time order."""
        async with self.engine.connect() as connection:
            found = await connection.execute(
                select(logs)
                .where(logs.c.workspace == workspace, logs.c.trace_id == trace_id)
                .order_by(logs.c.time_ns, logs.c.record_id)
            )
            return [dict(row._mapping) for row in found]

    async def for_trace(self, workspace: str, trace_id: str) -> list[dict[str, Any]]:
        """The trace's log records, as API views, in time order."""
        return [log_view(row) for row in await self.rows_for_trace(workspace, trace_id)]

    async def delete_trace(self, trace_id: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(logs).where(logs.c.workspace == current_workspace(), logs.c.trace_id == trace_id)
            )
