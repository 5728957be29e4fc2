"""Spans and trace summaries in SQL (SQLite or PostgreSQL), every read and write scoped by workspace.

- Spans are keyed by (workspace, trace_id, span_id) and inserted with
  ``ON CONFLICT DO NOTHING``: the same span sent twice is stored once.
- A trace's summary row is merged, in one atomic upsert (``INSERT ... ON CONFLICT
  DO UPDATE`` with expressions on the stored values), with the spans that the
  insert actually added: earliest start, latest end, counts added, the root's
  name and service. Concurrent writers in any number of processes cannot lose an
  update, and a trace that arrives over several requests (children first) merges
  to what one writer would have made.
- A span the database refuses (after the decoder's own checks) is isolated by
  writing halves of the group again, so it never fails the other requests.
- Each trace's distinct search terms (span attributes, span names, services; see
  ``facts.py``) are rows of ``plughost_otel_terms``, keyed for the filters of the
  list (on a SQLite file, after a moment in ``plughost_otel_terms_pending``: see
  ``term_index.py``). Each model-call span (an LLM or embedding call, in any convention, see
  ``conventions.py``) is a row of ``plughost_otel_calls``: its models, provider and
  tokens, its cost in US dollars (``cost_usd``, priced at ingest, see ``core.pricing``; null when
  no price is known), and whether it carries the call (``counted``). The summary holds the trace's
  LLM calls, tokens and cost, each call once: added as spans arrive, and counted again
  from the trace's call rows (in the same transaction, after the summary row is locked)
  once a trace has two calls or more, since nested spans of one call must count once.
- Writes are group-committed: one writer stores, in a single transaction, every
  request that arrived while the previous write ran. A lone request is written
  at once; under load the per-transaction costs are shared, and SQLite never
  sees two writers contend for its lock.

The tables are in :mod:`.tables`; what one write transaction does, on either database, in :mod:`.span_writes`.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    exists,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Result, Row
from sqlalchemy.exc import DataError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from core import Pricing, run_bulk
from core.context import current_workspace
from core.database import synchronous_twin
from core.unavailable import unavailable

from .conventions import StoredCall
from .decode import INT64_MAX
from .facts import SPAN_NAME_KEY
from .sorting import NEWEST_FIRST, SORT_VALUE, Order
from .span_writes import SqlAlchemyTransaction, WriteStatements, in_bulk_thread, run_here, write_rows
from .sqlite_writer import CompiledInsert, SqliteWriter
from .tables import SPAN_COLUMNS, TERM_COLUMNS, TOTAL_TOKENS, calls, spans, terms, terms_pending, traces

VALUE_ERRORS = (DataError, IntegrityError, ValueError, OverflowError, TypeError)
"""What a database or its driver raises for a value it cannot store (not for being down or busy)."""


SPANS_PER_PAGE = 200
"""Span rows read per query when a trace is streamed."""
SUMMARIES_PER_QUERY = 500
"""Trace ids per ``IN (...)`` when summaries are read by id."""
SORTED_ON_LOOP_ROWS = 2000
"""A group of up to this many span rows is put in key order on the event loop (well under a millisecond),
not in a bulk thread: the hop there and back cost more than the sort."""
FEW_TRACES = 1000
"""A term that fewer traces hold is read first when SQLite filters the list by it (see :meth:`SpanStore._has_term`);
one held more widely is checked on each listed trace (a page of them is soon found)."""
MAX_ISOLATED_REJECTIONS = 16
"""A store error that more spans than this fail alone is not about the data: the whole group gets it."""


@dataclass
class Stored:
    """What :meth:`SpanStore.add` did with one call's rows: how many the store refused, and why (up to 5 reasons)."""

    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 5:
            self.reasons.append(reason)


@dataclass(frozen=True)
class TraceFilter:
    service: str | None = None
    project: str | None = None
    status: str | None = None  # "ok" | "error"
    start_after_ns: int | None = None
    start_before_ns: int | None = None
    min_duration_ns: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # every pair on some span of the trace
    span_name: str | None = None
    model: str | None = None  # the request or response model of some model call, in any convention
    min_tokens: int | None = None  # input + output tokens of the trace's LLM calls
    session: str | None = None  # the trace's session (see ``session_id`` in :func:`.span_writes.summarise`)


SpanPosition = tuple[int, str]
"""A span's place in its trace's start order: ``(start_ns, span_id)``."""

Entry = tuple[Stored, dict[str, Any]]
"""A row waiting to be written, with the result of the ``add`` call it came from."""


class SpanStore:
    def __init__(self, engine: AsyncEngine, pricing: Pricing | None = None) -> None:
        self.engine = engine
        self.pricing = pricing or Pricing()
        """How the decoder prices the model calls of the spans given to :meth:`add` (see :func:`.decode.to_rows`)."""
        self._dialect = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
        self._statements = WriteStatements.for_dialect(self._dialect)
        self._waiting: list[tuple[list[dict[str, Any]], Stored, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None
        twin = synchronous_twin(engine)
        self._sqlite = (
            None
            if twin is None
            else SqliteWriter(
                twin,
                CompiledInsert(sqlite.insert(spans).on_conflict_do_nothing(), twin, SPAN_COLUMNS),
                CompiledInsert(sqlite.insert(terms_pending).on_conflict_do_nothing(), twin, TERM_COLUMNS),
                CompiledInsert(self._statements.merge_summaries, twin),
            )
        )
        self.committed: Callable[[list[dict[str, Any]]], None] = lambda rows: None
        """Told of each :meth:`add`'s rows once they are committed (the ``plughost_traces_stored`` event)."""

    async def add(self, rows: list[dict[str, Any]]) -> Stored:
        """Store spans and merge them into their traces' summaries; returns once they are committed.

        A span the database refuses is left out alone and counted in the result; the
        others are stored. Raises when the store is down or busy (nothing to blame on the data).
        """
        stored = Stored()
        if not rows:
            return stored
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, stored, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_waiting())
        await asyncio.shield(done)  # a client that leaves does not cancel the others' write
        self.committed(rows)
        return stored

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                calls = [(rows, stored) for rows, stored, _ in batch]
                small = sum(len(rows) for rows, _ in calls) <= SORTED_ON_LOOP_ROWS
                entries = _sorted_entries(calls) if small else await run_bulk(_sorted_entries, calls)
                for stored, reason in await self._write_isolating(entries):
                    stored.refuse(reason)
            except Exception as error:  # every request of the batch learns it was not stored
                for _, _, done in batch:
                    done.set_exception(error)
            else:
                for _, _, done in batch:
                    done.set_result(None)

    async def _write_isolating(self, entries: list[Entry]) -> list[tuple[Stored, str]]:
        """Write ``entries``; if the store refuses them, write each half alone, down to the single
        spans it refuses, so one unstorable span never fails the rest of its group."""
        try:
            await self._write([row for _, row in entries])
            return []
        except (*VALUE_ERRORS, StatementError) as error:
            if unavailable(error) is not None or not _about_a_value(error):
                raise
            if len(entries) == 1:
                stored, row = entries[0]
                return [
                    (stored, f"span {row['name'][:80]!r} ({row['span_id']}): the store refused it ({_short(error)})")
                ]
            half = len(entries) // 2
            refused = await self._write_isolating(entries[:half])
            refused += await self._write_isolating(entries[half:])
            if len(refused) > MAX_ISOLATED_REJECTIONS:
                raise
            return refused

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        """One transaction: insert the spans (sorted, so concurrent writers lock in one order), then
        merge what was new into the summaries with an atomic upsert on the stored values.

        On a SQLite file the whole transaction runs in one bulk thread (see :mod:`.sqlite_writer`), and a checkpoint
        of the WAL follows in another (see :mod:`.wal_checkpoints`). On
        PostgreSQL (asyncpg) the statements run on the event loop, which gets a turn between them, and
        the summaries and terms are computed in a bulk thread.
        """
        if self._sqlite is not None:
            async with self._sqlite.lock:
                await run_bulk(self._write_in_thread, rows)
            self._sqlite.checkpoints.after_write()
            self._sqlite.term_index.index_soon()
        else:
            async with self.engine.begin() as connection:
                await connection.run_sync(
                    lambda sync: write_rows(SqlAlchemyTransaction(self._statements, sync), rows, in_bulk_thread)
                )

    def _write_in_thread(self, rows: list[dict[str, Any]]) -> None:
        assert self._sqlite is not None
        with self._sqlite.transaction() as transaction:
            write_rows(transaction, rows, run_here)

    async def __aenter__(self) -> SpanStore:
        """The store of a running app: on a SQLite file, terms that an earlier run left waiting are indexed."""
        if self._sqlite is not None:
            self._sqlite.term_index.index_soon()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the SQLite writer's connections, after indexing the waiting terms and a checkpoint (the async
        engine is the host's to dispose)."""
        if self._sqlite is not None:
            await self._sqlite.term_index.aclose()
            await self._sqlite.checkpoints.aclose()
            self._sqlite.engine.dispose()

    async def list_traces(
        self,
        where: TraceFilter,
        limit: int,
        page_token: str | None,
        order: Order | None = None,
        *,
        workspace: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """In ``order`` (newest first by default), in ``workspace`` (the current one when ``None``); returns a
        page and the next page's token (``None`` at the end)."""
        if order is None:
            order = NEWEST_FIRST
        workspace = workspace or current_workspace()
        query = select(traces, order.expression.label(SORT_VALUE)).where(traces.c.workspace == workspace)
        if where.project is not None:
            query = query.where(traces.c.project == where.project)
        if where.session is not None:
            query = query.where(traces.c.session_id == where.session)
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
        if where.min_tokens is not None:
            query = query.where(where.min_tokens <= TOTAL_TOKENS)
        if where.model is not None:
            query = query.where(_has_model(where.model))
        if page_token:
            query = query.where(order.after(page_token))
        query = query.order_by(*order.order_by()).limit(limit + 1)
        wanted_terms = [
            *([("service.name", where.service)] if where.service is not None else []),
            *where.attributes,
            *([(SPAN_NAME_KEY, where.span_name)] if where.span_name is not None else []),
        ]
        async with self.engine.connect() as connection:
            for key, value in wanted_terms:
                query = query.where(await self._has_term(connection, workspace, key, value))
            found = [dict(row._mapping) for row in await connection.execute(query)]
        page, more = found[:limit], len(found) > limit
        token = order.token(page[-1]) if more else None
        for row in page:
            del row[SORT_VALUE]
        return page, token

    async def _has_term(self, connection: AsyncConnection, workspace: str, key: str, value: str) -> ColumnElement[bool]:
        """Some span of the listed trace has the term.

        PostgreSQL's planner starts from the term's traces (the term index) or from the listed traces, as its
        statistics say. SQLite's checks each listed trace for the term, through the key: by trace, a probe at a
        random place for each, which a common term soon ends (a page of traces found) but a rare one does not.
        So on SQLite a term that fewer than :data:`FEW_TRACES` traces hold is read first, through the term
        index, and the list takes those traces by id."""
        held_by_listed = exists().where(
            terms.c.workspace == traces.c.workspace,
            terms.c.key == key,
            terms.c.value == value,
            terms.c.trace_id == traces.c.trace_id,
        )
        if self._dialect != "sqlite":
            return held_by_listed
        # SQLite's recent traces may have their terms waiting for the term index (see term_index.py)
        waiting = terms_pending.c
        waiting_term = and_(waiting.workspace == workspace, waiting.key == key, waiting.value == value)
        # by rowid: asked for trace ids, SQLite's planner walks the key (it covers them) over the workspace
        rowid: ColumnElement[int] = literal_column("rowid")
        holding = (
            select(rowid)
            .select_from(terms)
            .where(terms.c.workspace == workspace, terms.c.key == key, terms.c.value == value)
            .limit(FEW_TRACES)
        )
        # one statement, one snapshot: a trace moved meanwhile is in one table or the other, never neither
        indexed_or_waiting = (
            select(terms.c.trace_id)
            .where(rowid.in_(holding))
            .union_all(select(waiting.trace_id).where(waiting_term))
            .limit(FEW_TRACES)
        )
        trace_ids = (await connection.scalars(indexed_or_waiting)).all()
        if len(trace_ids) < FEW_TRACES:  # all of them
            return traces.c.trace_id.in_(trace_ids)
        return or_(
            held_by_listed,
            exists().where(waiting_term, waiting.trace_id == traces.c.trace_id),
        )

    async def get_summary(self, workspace: str, trace_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as connection:
            found = (
                await connection.execute(
                    select(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id)
                )
            ).first()
        return None if found is None else dict(found._mapping)

    async def get_summaries(self, workspace: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        """The summary rows of those of ``trace_ids`` that exist, in no particular order."""
        found: list[dict[str, Any]] = []
        async with self.engine.connect() as connection:
            for start in range(0, len(trace_ids), SUMMARIES_PER_QUERY):
                chosen = trace_ids[start : start + SUMMARIES_PER_QUERY]
                query = select(traces).where(traces.c.workspace == workspace, traces.c.trace_id.in_(chosen))
                found += [dict(row._mapping) for row in await connection.execute(query)]
        return found

    async def span_pages(
        self, workspace: str, trace_id: str, page_size: int = SPANS_PER_PAGE, **options: Any
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """:meth:`span_tuples` (with its ``options``), each row as a dict by column name."""
        names = span_row_names(options.get("columns", SPAN_COLUMNS))
        async for page in self.span_tuples(workspace, trace_id, page_size, **options):
            yield [dict(zip(names, row, strict=True)) for row in page]

    async def span_tuples(
        self,
        workspace: str,
        trace_id: str,
        page_size: int = SPANS_PER_PAGE,
        *,
        after: SpanPosition | None = None,
        limit: int | None = None,
        columns: tuple[str, ...] = SPAN_COLUMNS,
    ) -> AsyncIterator[Sequence[Row[Any]]]:
        """The trace's span rows in start order (then span id), a page at a time: those after
        ``after``, at most ``limit`` of them (all when ``None``), as tuples of :func:`span_row_names`
        ``(columns)`` (no dict per row: most of the CPU of reading a big trace). A connection is held
        only while a page is read."""
        names = span_row_names(columns)
        wanted = [spans.c[name] for name in names]
        start_at, id_at = names.index("start_ns"), names.index("span_id")
        query = (
            select(*wanted)
            .where(spans.c.workspace == workspace, spans.c.trace_id == trace_id)
            .order_by(spans.c.start_ns, spans.c.span_id)
        )
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page_query = query.limit(size)
            if after is not None:  # a row value: both stores walk the start index from there (an OR made
                # SQLite scan the trace's spans from its first for every page)
                page_query = page_query.where(tuple_(spans.c.start_ns, spans.c.span_id) > tuple_(*after))
            async with self.engine.connect() as connection:
                page = (await connection.execute(page_query)).all()
            if page:
                yield page
            if len(page) < size:
                return
            if left is not None:
                left -= len(page)
            after = page[-1][start_at], page[-1][id_at]

    async def get_spans(self, workspace: str, trace_id: str, span_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored span rows of those of ``span_ids`` that exist, in no particular order."""
        found: list[dict[str, Any]] = []
        async with self.engine.connect() as connection:
            for start in range(0, len(span_ids), SUMMARIES_PER_QUERY):
                chosen = span_ids[start : start + SUMMARIES_PER_QUERY]
                query = select(spans).where(
                    spans.c.workspace == workspace, spans.c.trace_id == trace_id, spans.c.span_id.in_(chosen)
                )
                found += as_dicts(await connection.execute(query))
        return found

    async def get_span(self, workspace: str, trace_id: str, span_id: str) -> dict[str, Any] | None:
        """One stored span row, or ``None``."""
        query = select(spans).where(
            spans.c.workspace == workspace, spans.c.trace_id == trace_id, spans.c.span_id == span_id
        )
        async with self.engine.connect() as connection:
            found = (await connection.execute(query)).first()
        return None if found is None else dict(found._mapping)

    async def get_trace(self, trace_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The trace's summary and its span rows in start order, or ``None``."""
        workspace = current_workspace()
        async with self.engine.connect() as connection:
            summary = (
                await connection.execute(
                    select(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id)
                )
            ).first()
            if summary is None:
                return None
            rows = await connection.execute(
                select(spans)
                .where(spans.c.workspace == workspace, spans.c.trace_id == trace_id)
                .order_by(spans.c.start_ns, spans.c.span_id)
            )
            return dict(summary._mapping), as_dicts(rows)

    async def stored_calls(self, workspace: str, trace_id: str) -> dict[str, StoredCall]:
        """The trace's model-call spans: whether each carries its call, its cost and its tokens."""
        async with self.engine.connect() as connection:
            found = await connection.execute(
                select(
                    calls.c.span_id, calls.c.counted, calls.c.cost_usd, calls.c.input_tokens, calls.c.output_tokens
                ).where(calls.c.workspace == workspace, calls.c.trace_id == trace_id)
            )
            return {span_id: StoredCall(*call) for span_id, *call in found}

    async def delete_trace(self, trace_id: str) -> bool:
        workspace = current_workspace()
        async with self.engine.begin() as connection:
            await delete_trace_rows(connection, workspace, [trace_id])
            deleted = await connection.execute(
                delete(traces).where(traces.c.workspace == workspace, traces.c.trace_id == trace_id)
            )
        return bool(deleted.rowcount)


async def delete_trace_rows(connection: AsyncConnection, workspace: str, trace_ids: Sequence[str]) -> int:
    """Delete the spans, the search terms (indexed or waiting) and the model calls of ``trace_ids``, and return how
    many spans went. Their summaries are the caller's to delete: it decides which traces go."""
    deleted_spans = 0
    for table in (spans, terms, terms_pending, calls):
        deleted = await connection.execute(
            delete(table).where(table.c.workspace == workspace, table.c.trace_id.in_(trace_ids))
        )
        if table is spans:
            deleted_spans = deleted.rowcount
    return deleted_spans


async def insert_all(engine: AsyncEngine, insert: Any, rows: list[dict[str, Any]], per_statement: int) -> Stored:
    """Insert ``rows`` in one transaction, ``per_statement`` rows per statement (under the bind parameter limits);
    returns once they are committed."""
    async with engine.begin() as connection:
        for start in range(0, len(rows), per_statement):
            await connection.execute(insert, rows[start : start + per_statement])
    return Stored()


def _has_model(model: str) -> ColumnElement[bool]:
    """Some model call of the listed trace asked for or answered with ``model`` (an index probe)."""
    return or_(
        exists().where(
            calls.c.workspace == traces.c.workspace,
            calls.c.request_model == model,
            calls.c.trace_id == traces.c.trace_id,
        ),
        exists().where(
            calls.c.workspace == traces.c.workspace,
            calls.c.response_model == model,
            calls.c.trace_id == traces.c.trace_id,
        ),
    )


def _about_a_value(error: BaseException | None) -> bool:
    """Whether the error, or one it wraps (drivers' errors come wrapped, sometimes twice), is about a
    value: a Python value error, or a PostgreSQL data (22xxx) or integrity (23xxx) exception."""
    while error is not None:
        if isinstance(error, VALUE_ERRORS) or str(getattr(error, "sqlstate", "") or "")[:2] in ("22", "23"):
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False


def _sorted_entries(calls: list[tuple[list[dict[str, Any]], Stored]]) -> list[Entry]:
    """Every row of the group with its call's result, in key order (concurrent writers then lock rows in one order)."""
    entries = [(stored, row) for rows, stored in calls for row in rows]
    entries.sort(key=lambda entry: (entry[1]["workspace"], entry[1]["trace_id"], entry[1]["span_id"]))
    return entries


def _short(error: BaseException) -> str:
    """The first line of a driver's message, without the SQL and parameters SQLAlchemy appends."""
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return re.sub(
        r"\s+", " ", f"{type(getattr(error, 'orig', None) or error).__name__}: {message[0] if message else ''}"
    )[:200]


def span_row_names(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of the rows :meth:`SpanStore.span_tuples` reads: ``columns``, then ``start_ns`` and ``span_id``
    unless they are among them."""
    return tuple(dict.fromkeys((*columns, "start_ns", "span_id")))


def as_dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """The rows as dicts by column name: half the CPU of ``dict(row._mapping)`` for each row,
    which counts when a big trace is read (100,000 rows: 0.65 s against 1.3 s)."""
    names = tuple(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def encode_span_cursor(position: SpanPosition) -> str:
    """The cursor of the piece after the span at ``position`` (see :meth:`SpanStore.span_tuples`)."""
    return _encode_position(*position)


def decode_span_cursor(cursor: str) -> SpanPosition:
    """The position a cursor names; ``ValueError`` for anything :func:`encode_span_cursor` did not make."""
    return _decode_position(cursor, 16, "cursor")


def _encode_position(start_ns: int, hex_id: str) -> str:
    return base64.urlsafe_b64encode(f"{start_ns}:{hex_id}".encode()).decode()


def _decode_position(token: str, id_digits: int, name: str) -> tuple[int, str]:
    """``(start_ns, hex id)`` of a token made by :func:`_encode_position`; ``ValueError`` naming ``name`` otherwise."""
    try:
        start_ns, hex_id = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        position = int(start_ns), hex_id
    except (ValueError, UnicodeError):
        position = None
    if (
        position is None
        or not -INT64_MAX <= position[0] <= INT64_MAX
        or not re.fullmatch(f"[0-9a-f]{{{id_digits}}}", position[1])
    ):
        raise ValueError(f"{name} {token[:64]!r} is not one this server returned")
    return position
