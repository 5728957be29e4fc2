"""Spans and trace summaries in SQL (SQLite or PostgreSQL), every read and write scoped by workspace.

- Spans are keyed by (workspace, trace_id, span_id) and inserted with
  ``ON CONFLICT DO NOTHING``: the same span sent twice is stored once.
- A trace's summary row is recomputed from its spans after each insert, in one
  upsert, so a trace that arrives over several requests (children first) merges.
- Writes are group-committed: one writer stores, in a single transaction, every
  request that arrived while the previous write ran. A lone request is written
  at once; under load the per-transaction costs are shared, and SQLite never
  sees two writers contend for its lock.
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from core.context import current_workspace

from .decode import STATUS_ERROR

metadata = MetaData()

spans = Table(
    "plughost_otel_spans",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16)),
    Column("name", Text, nullable=False),
    Column("kind", Integer, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("span", LargeBinary, nullable=False),
    Column("resource", LargeBinary, nullable=False),
    Column("resource_schema_url", Text, nullable=False),
    Column("scope", LargeBinary, nullable=False),
    Column("scope_schema_url", Text, nullable=False),
)

traces = Table(
    "plughost_otel_traces",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("trace_id", String(32), primary_key=True),
    Column("project", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("root_name", Text),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("span_count", Integer, nullable=False),
    Column("error_count", Integer, nullable=False),
    Index("plughost_otel_traces_start", "workspace", "start_ns", "trace_id"),
)

SUMMARISE = text(
    f"""
    INSERT INTO plughost_otel_traces
        (workspace, trace_id, project, service_name, root_name, start_ns, end_ns, duration_ns, span_count, error_count)
    SELECT workspace, trace_id,
           MIN(project),
           COALESCE(MIN(CASE WHEN parent_span_id IS NULL THEN service_name END), MIN(service_name)),
           MIN(CASE WHEN parent_span_id IS NULL THEN name END),
           MIN(start_ns), MAX(end_ns), MAX(end_ns) - MIN(start_ns),
           COUNT(*), SUM(CASE WHEN status_code = {STATUS_ERROR} THEN 1 ELSE 0 END)
    FROM plughost_otel_spans
    WHERE workspace = :workspace AND trace_id IN :trace_ids
    GROUP BY workspace, trace_id
    ON CONFLICT (workspace, trace_id) DO UPDATE SET
        project = excluded.project, service_name = excluded.service_name, root_name = excluded.root_name,
        start_ns = excluded.start_ns, end_ns = excluded.end_ns, duration_ns = excluded.duration_ns,
        span_count = excluded.span_count, error_count = excluded.error_count
    """
).bindparams(bindparam("trace_ids", expanding=True))


@dataclass(frozen=True)
class TraceFilter:
    service: str | None = None
    project: str | None = None
    status: str | None = None  # "ok" | "error"
    start_after_ns: int | None = None
    start_before_ns: int | None = None
    min_duration_ns: int | None = None


class SpanStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
        self._insert_spans = dialect.insert(spans).on_conflict_do_nothing()
        self._waiting: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, rows: list[dict[str, Any]]) -> None:
        """Store spans and refresh the summaries of their traces; returns once they are committed."""
        if not rows:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        await asyncio.shield(done)  # a client that leaves does not cancel the others' write

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._write([row for rows, _ in batch for row in rows])
            except Exception as error:  # every request of the batch learns it was not stored
                for _, done in batch:
                    done.set_exception(error)
            else:
                for _, done in batch:
                    done.set_result(None)

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        by_workspace: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            by_workspace[row["workspace"]].add(row["trace_id"])
        async with self.engine.begin() as connection:
            await connection.execute(self._insert_spans, rows)
            for workspace, trace_ids in by_workspace.items():
                await connection.execute(SUMMARISE, {"workspace": workspace, "trace_ids": sorted(trace_ids)})

    async def list_traces(self, where: TraceFilter, limit: int, page_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; returns a page and the token of the next page (``None`` at the end)."""
        query = select(traces).where(traces.c.workspace == current_workspace())
        if where.project is not None:
            query = query.where(traces.c.project == where.project)
        if where.service is not None:
            query = query.where(
                exists().where(
                    spans.c.workspace == traces.c.workspace,
                    spans.c.trace_id == traces.c.trace_id,
                    spans.c.service_name == where.service,
                )
            )
        if where.status == "error":
            query = query.where(traces.c.error_count > 0)
        elif where.status == "ok":
            query = query.where(traces.c.error_count == 0)
        if where.start_after_ns is not None:
            query = query.where(traces.c.start_ns >= where.start_after_ns)
        if where.start_before_ns is not None:
            query = query.where(traces.c.start_ns < where.start_before_ns)
        if where.min_duration_ns is not None:
            query = query.where(traces.c.duration_ns >= where.min_duration_ns)
        if page_token:
            start_ns, trace_id = decode_page_token(page_token)
            query = query.where(
                or_(traces.c.start_ns < start_ns, and_(traces.c.start_ns == start_ns, traces.c.trace_id < trace_id))
            )
        query = query.order_by(traces.c.start_ns.desc(), traces.c.trace_id.desc()).limit(limit + 1)
        async with self.engine.connect() as connection:
            found = [dict(row._mapping) for row in await connection.execute(query)]
        page, more = found[:limit], len(found) > limit
        token = encode_page_token(page[-1]["start_ns"], page[-1]["trace_id"]) if more else None
        return page, token

    async def get_trace(self, trace_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The trace's summary and its span rows in start order, or ``None``."""
        workspace = current_workspace()
        async with self.engine.connect() as connection:
            summary = (
                await connection.execute(select(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id))
            ).first()
            if summary is None:
                return None
            rows = await connection.execute(
                select(spans)
                .where(spans.c.workspace == workspace, spans.c.trace_id == trace_id)
                .order_by(spans.c.start_ns, spans.c.span_id)
            )
            return dict(summary._mapping), [dict(row._mapping) for row in rows]

    async def delete_trace(self, trace_id: str) -> bool:
        workspace = current_workspace()
        async with self.engine.begin() as connection:
            await connection.execute(delete(spans).where(spans.c.workspace == workspace, spans.c.trace_id == trace_id))
            deleted = await connection.execute(delete(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id))
        return bool(deleted.rowcount)


def encode_page_token(start_ns: int, trace_id: str) -> str:
    return base64.urlsafe_b64encode(f"{start_ns}:{trace_id}".encode()).decode()


def decode_page_token(token: str) -> tuple[int, str]:
    try:
        start_ns, trace_id = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        return int(start_ns), trace_id
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"page_token {token!r} is not one this server returned") from None
