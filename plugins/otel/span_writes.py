"""One write of span rows, in one transaction: the spans, then the search terms and model calls of those that
were new, then their traces' summaries, merged with the stored ones inside the database, and last the calls of the
traces that have several, counted again. The same steps on either store, through a :class:`Transaction`: SQLite's
raw cursor in a bulk thread (:mod:`.sqlite_writer`), or SQLAlchemy on PostgreSQL (:class:`SqlAlchemyTransaction`).
"""

from __future__ import annotations

import functools
import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import and_, bindparam, case, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement
from sqlalchemy.util import await_

from core import empty, run_bulk
from core.database import on_conflict_insert

from .conventions import counted_calls
from .decode import STATUS_ERROR
from .facts import MAX_TERM_CHARS
from .tables import SPAN_COLUMNS, TERM_COLUMNS, calls, spans, terms, traces

T = TypeVar("T")

SPAN_ROWS_PER_STATEMENT = 1000
"""Rows per INSERT: 16 columns x 1000 stays under PostgreSQL's 32,767 bind parameters (and SQLite's
32,766), and the event loop gets a turn between statements of a big request."""
TERM_ROWS_PER_STATEMENT = 4000
"""4 columns x 4000 rows, under the same limits."""
TERMS_PER_STEP = 10_000
"""Terms put in a set or sorted per C call (a few milliseconds of holding the GIL)."""
TRACES_PER_RECOUNT = 1000
"""Traces whose calls are counted again per query (an ``IN`` list under the bind parameter limits)."""


class Compute(Protocol):
    """How a write runs its CPU-heavy steps: where it is (in a bulk thread), or in a bulk thread (on the loop)."""

    def __call__(self, work: Callable[[], T]) -> T: ...


def run_here(work: Callable[[], T]) -> T:
    """Run ``work`` in the calling thread: a write that runs whole in a bulk thread already (SQLite's)."""
    return work()


def in_bulk_thread(work: Callable[[], T]) -> T:
    """From synchronous code that SQLAlchemy runs on the event loop (``run_sync``): ``work`` in a bulk thread."""
    return await_(run_bulk(work))


class Transaction(Protocol):
    """The three writes of :func:`write_rows`, inside one transaction."""

    keyed_locks: bool
    """Whether rows lock one by one (PostgreSQL), so that concurrent writers must write in key order."""

    def add_spans(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert span rows (one already stored is left as it is); returns those that were new."""
        ...

    def add_terms(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Insert term rows, tuples of :data:`TERM_COLUMNS` (one already stored is left as it is)."""
        ...

    def merge_summaries(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Merge summary rows into the stored ones; returns the traces (workspace, trace id) that, merged, count
        more than one call: a new span may have linked two of their calls (the link between a call's two sides may
        arrive last)."""
        ...

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for the statements that are not on the hot path (call rows)."""
        ...


class WriteStatements(NamedTuple):
    """A store's write statements, made once for its dialect: all three for :class:`SqlAlchemyTransaction`, and
    the summaries' upsert for SQLite's writer too (which compiles it once, see :mod:`.sqlite_writer`)."""

    insert_spans: Any
    """Insert span rows, a span already stored left as it is, returning the keys of those that were new."""
    insert_terms: Any
    """Insert term rows, a term already stored left as it is."""
    merge_summaries: Any
    """Upsert summary rows (see :func:`summary_merge`), returning each trace's key and its merged call count."""

    @classmethod
    def for_dialect(cls, dialect: str) -> WriteStatements:
        """The statements for ``dialect`` (``"sqlite"`` or ``"postgresql"``)."""
        return cls(
            on_conflict_insert(spans, dialect)
            .on_conflict_do_nothing()
            .returning(spans.c.workspace, spans.c.trace_id, spans.c.span_id),
            on_conflict_insert(terms, dialect).on_conflict_do_nothing(),
            summary_merge(dialect).returning(traces.c.workspace, traces.c.trace_id, traces.c.llm_calls),
        )


class SqlAlchemyTransaction:
    """:class:`Transaction` through SQLAlchemy (PostgreSQL), on a connection that ``run_sync`` passes."""

    keyed_locks = True

    def __init__(self, statements: WriteStatements, connection: Connection) -> None:
        self._statements = statements
        self.connection = connection

    def add_spans(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        columns = [{name: row[name] for name in SPAN_COLUMNS} for row in rows]
        new = {tuple(key) for key in self.connection.execute(self._statements.insert_spans, columns)}
        return [row for row in rows if (row["workspace"], row["trace_id"], row["span_id"]) in new]

    def add_terms(self, rows: list[tuple[str, str, str, str]]) -> None:
        self.connection.execute(
            self._statements.insert_terms, [dict(zip(TERM_COLUMNS, row, strict=True)) for row in rows]
        )

    def merge_summaries(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        merged = self.connection.execute(self._statements.merge_summaries, rows)
        return [(workspace, trace_id) for workspace, trace_id, calls in merged if calls > 1]


@functools.cache
def _insert_calls(dialect: str) -> Any:
    """Insert call rows, a call already stored left as it is."""
    return on_conflict_insert(calls, dialect).on_conflict_do_nothing()


def write_rows(transaction: Transaction, rows: list[dict[str, Any]], compute: Compute) -> None:
    """Insert the spans, then the terms and model calls of those that were new, then merge them into their
    summaries; last, count again the calls of the traces that have several (see :func:`recount_calls`), which the
    summaries' upsert returns (a query of its own after every write cost as much as the upsert)."""
    added: list[dict[str, Any]] = []
    for start in range(0, len(rows), SPAN_ROWS_PER_STATEMENT):
        added += transaction.add_spans(rows[start : start + SPAN_ROWS_PER_STATEMENT])
    summaries, new_terms, new_calls = compute(
        lambda: (summarise(added), trace_terms(added, ordered=transaction.keyed_locks), call_rows(added))
    )
    for start in range(0, len(new_terms), TERM_ROWS_PER_STATEMENT):
        transaction.add_terms(new_terms[start : start + TERM_ROWS_PER_STATEMENT])
    if len(new_terms) > TERMS_PER_STEP:  # a term at a time: freeing a list of 1.8 M term rows held the GIL for a second
        compute(lambda: empty(new_terms))
    insert_calls = _insert_calls(transaction.connection.dialect.name)
    for start in range(0, len(new_calls), SPAN_ROWS_PER_STATEMENT):
        transaction.connection.execute(insert_calls, new_calls[start : start + SPAN_ROWS_PER_STATEMENT])
    several: list[tuple[str, str]] = []
    for start in range(0, len(summaries), SPAN_ROWS_PER_STATEMENT):
        several += transaction.merge_summaries(summaries[start : start + SPAN_ROWS_PER_STATEMENT])
    if several:
        recount_calls(transaction.connection, several)


def summarise(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per trace, the summary of ``rows`` alone, sorted by key; :func:`summary_merge` adds it to the stored one.

    ``service_name`` is the least service of the root spans, or of all spans while no root is known;
    ``session_id`` the least session its spans name (a trace is one turn of one conversation).
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        is_root = row["parent_span_id"] is None
        summary = found.get((row["workspace"], row["trace_id"]))
        if summary is None:
            found[(row["workspace"], row["trace_id"])] = {
                "workspace": row["workspace"],
                "trace_id": row["trace_id"],
                "project": row["project"],
                "service_name": row["service_name"],
                "root_name": row["name"] if is_root else None,
                "start_ns": row["start_ns"],
                "end_ns": row["end_ns"],
                "duration_ns": row["end_ns"] - row["start_ns"],
                "span_count": 1,
                "error_count": int(row["status_code"] == STATUS_ERROR),
                "llm_calls": int(row.get("llm_call", False)),
                "input_tokens": row.get("input_tokens", 0),
                "output_tokens": row.get("output_tokens", 0),
                "cost_usd": row.get("cost_usd"),
                "session_id": _session_of(row),
            }
            continue
        summary["project"] = min(summary["project"], row["project"])
        summary["start_ns"] = min(summary["start_ns"], row["start_ns"])
        summary["end_ns"] = max(summary["end_ns"], row["end_ns"])
        summary["duration_ns"] = summary["end_ns"] - summary["start_ns"]
        summary["span_count"] += 1
        summary["error_count"] += row["status_code"] == STATUS_ERROR
        summary["llm_calls"] += bool(row.get("llm_call", False))
        summary["input_tokens"] += row.get("input_tokens", 0)
        summary["output_tokens"] += row.get("output_tokens", 0)
        summary["cost_usd"] = add_costs(summary["cost_usd"], row.get("cost_usd"))
        summary["session_id"] = _least(summary["session_id"], _session_of(row))
        if is_root and summary["root_name"] is None:
            summary["root_name"], summary["service_name"] = row["name"], row["service_name"]
        elif is_root or summary["root_name"] is None:
            summary["root_name"] = _least(summary["root_name"], row["name"] if is_root else None)
            summary["service_name"] = min(summary["service_name"], row["service_name"])
    return [found[key] for key in sorted(found)]


def add_costs(a: float | None, b: float | None) -> float | None:
    """The sum of two costs, either unknown (``None``): unknown only when both are."""
    return b if a is None else a if b is None else a + b


def _session_of(row: dict[str, Any]) -> str | None:
    """The session the span names (``session.id``, ``gen_ai.conversation.id``...: see :data:`.conventions.SESSION`)."""
    facts = row.get("llm")
    session = None if facts is None else facts.session_id
    return session if session is not None and len(session) <= MAX_TERM_CHARS and "\0" not in session else None


def _least(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


def summary_merge(dialect: str) -> Any:
    """``INSERT`` of :func:`summarise` rows that, on an existing trace, merges with the stored values
    inside the database (the row is locked meanwhile), so no concurrent update is lost."""
    insert = on_conflict_insert(traces, dialect)
    stored, new = traces.c, insert.excluded
    least, greatest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)

    def least_of(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """Ignoring NULL (PostgreSQL's LEAST does; SQLite's two-argument MIN does not)."""
        return least(a, b) if dialect == "postgresql" else func.coalesce(least(a, b), a, b)

    return insert.on_conflict_do_update(
        index_elements=[traces.c.workspace, traces.c.trace_id],
        set_={
            "project": least(stored.project, new.project),
            "service_name": case(
                (and_(stored.root_name.is_(None), new.root_name.is_not(None)), new.service_name),
                (and_(stored.root_name.is_not(None), new.root_name.is_(None)), stored.service_name),
                else_=least(stored.service_name, new.service_name),
            ),
            "root_name": least_of(stored.root_name, new.root_name),
            "start_ns": least(stored.start_ns, new.start_ns),
            "end_ns": greatest(stored.end_ns, new.end_ns),
            "duration_ns": greatest(stored.end_ns, new.end_ns) - least(stored.start_ns, new.start_ns),
            "span_count": stored.span_count + new.span_count,
            "error_count": stored.error_count + new.error_count,
            "llm_calls": stored.llm_calls + new.llm_calls,
            "input_tokens": stored.input_tokens + new.input_tokens,
            "output_tokens": stored.output_tokens + new.output_tokens,
            "cost_usd": case(
                (stored.cost_usd.is_(None), new.cost_usd),
                (new.cost_usd.is_(None), stored.cost_usd),
                else_=stored.cost_usd + new.cost_usd,
            ),
            "session_id": least_of(stored.session_id, new.session_id),
        },
    )


def trace_terms(rows: Iterable[dict[str, Any]], ordered: bool = True) -> list[tuple[str, str, str, str]]:
    """The distinct term rows of ``rows`` (rows without ``terms`` add none), as tuples of :data:`TERM_COLUMNS`,
    sorted when ``ordered``. A trace's spans share most of their terms: they are made distinct per trace first, which
    builds no tuple for a repeated one. Run in a bulk thread, it takes the terms
    :data:`TERMS_PER_STEP` at a time (see :func:`_sorted_in_steps`). A span of many attributes has its terms in a
    list, distinct already (see ``SpanFacts.terms``): they are taken as they are, never put in one big set (whose
    growth holds the GIL); what they share with the trace's other spans the insert leaves out (``ON CONFLICT``)."""
    per_trace: dict[tuple[str, str], set[tuple[str, str]]] = {}
    found: list[tuple[str, str, str, str]] = []
    for row in rows:
        terms = row.get("terms")
        if isinstance(terms, list):
            workspace, trace_id = row["workspace"], row["trace_id"]
            found.extend((workspace, key, value, trace_id) for key, value in terms)  # no list of them all to free
        elif terms:
            held = per_trace.setdefault((row["workspace"], row["trace_id"]), set())
            for start in range(0, len(terms), TERMS_PER_STEP):
                held.update(terms[start : start + TERMS_PER_STEP])
    found += [(w, key, value, t) for (w, t), pairs in per_trace.items() for key, value in pairs]
    return _sorted_in_steps(found) if ordered else found


def _sorted_in_steps(items: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """``sorted(items)``, where no single call holds the GIL for long: ``list.sort`` and ``set.update``
    are one C call each, and on one span of 1.8 M attributes the sort of its terms held the GIL, so
    the event loop, for seconds. Runs of :data:`TERMS_PER_STEP` are sorted, then merged by
    ``heapq.merge`` (Python code, which lets the GIL go every switch interval)."""
    if len(items) <= TERMS_PER_STEP:
        items.sort()
        return items
    runs = [sorted(items[start : start + TERMS_PER_STEP]) for start in range(0, len(items), TERMS_PER_STEP)]
    return list(heapq.merge(*runs))


def call_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``plughost_otel_calls`` rows of the model-call spans among ``rows`` (each counted, as if alone)."""
    return [
        {
            "workspace": row["workspace"],
            "trace_id": row["trace_id"],
            "span_id": row["span_id"],
            "parent_span_id": row["parent_span_id"],
            "kind": facts.kind,
            "request_model": facts.request_model,
            "response_model": facts.response_model,
            "provider": facts.provider,
            "input_tokens": facts.input_tokens,
            "output_tokens": facts.output_tokens,
            "cached_tokens": facts.cached_tokens,
            "reasoning_tokens": facts.reasoning_tokens,
            "counted": True,
            "cost_usd": row.get("cost_usd"),
        }
        for row in rows
        if (facts := row.get("llm")) is not None and facts.model_call
    ]


def recount_calls(connection: Connection, keys: list[tuple[str, str]]) -> None:
    """Count the calls of the traces ``keys`` (workspace, trace id) again from all their stored call rows (see
    :func:`.conventions.counted_calls`), and set the summaries whose count changed. Run after the summary rows
    are locked by this transaction's upsert, so a writer of the same trace in another process has committed
    its rows or waits for ours. A few statements for the whole group, whatever its number of traces.

    Each call row is stored counted, and added to its summary as such; so a summary needs setting only
    when some of its trace's rows change their ``counted``."""
    by_workspace: dict[str, list[str]] = defaultdict(list)
    for workspace, trace_id in keys:
        by_workspace[workspace].append(trace_id)
    flags: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for workspace, trace_ids in by_workspace.items():
        for start in range(0, len(trace_ids), TRACES_PER_RECOUNT):
            chunk = trace_ids[start : start + TRACES_PER_RECOUNT]
            found: dict[str, list[Any]] = defaultdict(list)
            for row in connection.execute(
                select(
                    calls.c.trace_id,
                    calls.c.span_id,
                    calls.c.parent_span_id,
                    calls.c.input_tokens,
                    calls.c.output_tokens,
                    calls.c.counted,
                    calls.c.cost_usd,
                ).where(calls.c.workspace == workspace, calls.c.trace_id.in_(chunk))
            ):
                found[row.trace_id].append(row)
            parents = _parents(connection, workspace, found)
            for trace_id, rows in found.items():
                usage = {row.span_id: row.input_tokens is not None or row.output_tokens is not None for row in rows}
                counted = counted_calls(usage, parents.get(trace_id) or {r.span_id: r.parent_span_id for r in rows})
                changed = [row for row in rows if row.counted != (row.span_id in counted)]
                if not changed:
                    continue
                flags += [{"w": workspace, "t": trace_id, "s": row.span_id, "c": not row.counted} for row in changed]
                kept = [row for row in rows if row.span_id in counted]
                summaries.append(
                    {
                        "w": workspace,
                        "t": trace_id,
                        "calls": len(kept),
                        "input": sum(row.input_tokens or 0 for row in kept),
                        "output": sum(row.output_tokens or 0 for row in kept),
                        "cost": functools.reduce(add_costs, (row.cost_usd for row in kept), None),
                    }
                )
    if flags:
        in_call = (calls.c.workspace == bindparam("w")) & (calls.c.trace_id == bindparam("t"))
        connection.execute(
            update(calls).where(in_call, calls.c.span_id == bindparam("s")).values(counted=bindparam("c")), flags
        )
        connection.execute(
            update(traces)
            .where(traces.c.workspace == bindparam("w"), traces.c.trace_id == bindparam("t"))
            .values(
                llm_calls=bindparam("calls"),
                input_tokens=bindparam("input"),
                output_tokens=bindparam("output"),
                cost_usd=bindparam("cost"),
            ),
            summaries,
        )


def _parents(connection: Connection, workspace: str, found: dict[str, list[Any]]) -> dict[str, dict[str, str | None]]:
    """The span tree (span id to parent) of each trace whose call rows alone do not link up: a call whose
    parent is not a call may sit under one through other spans (an HTTP client span between the two sides)."""
    unlinked = []
    for trace_id, rows in found.items():
        ids = {row.span_id for row in rows}
        if any(row.parent_span_id is not None and row.parent_span_id not in ids for row in rows):
            unlinked.append(trace_id)
    trees: dict[str, dict[str, str | None]] = defaultdict(dict)
    for start in range(0, len(unlinked), TRACES_PER_RECOUNT):
        for trace_id, span_id, parent in connection.execute(
            select(spans.c.trace_id, spans.c.span_id, spans.c.parent_span_id).where(
                spans.c.workspace == workspace, spans.c.trace_id.in_(unlinked[start : start + TRACES_PER_RECOUNT])
            )
        ):
            trees[trace_id][span_id] = parent
    return trees
