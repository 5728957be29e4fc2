"""The span store's writes on a SQLite file: one transaction, whole, in one bulk thread, through the driver.

Through the async driver (aiosqlite) each statement, cursor and commit of a write was a hop to the
driver's thread and back, about fifteen for a request of one trace, and SQLAlchemy's processing of
each row's parameters cost as much CPU as SQLite's own work. Here a synchronous connection to the
same file (:func:`core.database.synchronous_twin`) runs the transaction in the calling thread, and the
statements, compiled once by SQLAlchemy, get plain tuples.

A group's span rows are inserted in one ``executemany``, whose row count says whether every span was new;
when some were stored already, one ``execute`` at a time says which (SQLite cannot return rows from
``executemany``); the driver caches the prepared statement. The
driver's errors leave as SQLAlchemy's (``IntegrityError``, ``OperationalError``...), as from any other
statement of the store, so that the store tells bad data from a busy or broken database the same way.
"""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Insert

from .term_index import TermIndex
from .wal_checkpoints import WalCheckpoints


class CompiledInsert:
    """An INSERT compiled for SQLite, with the order of its parameters."""

    def __init__(self, statement: Insert, engine: Engine, columns: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=engine.dialect, column_keys=list(columns) if columns else None)
        self.sql = compiled.string
        self.columns = tuple(compiled.positiontup or ())
        # in C: a list made in Python cost 1.1 µs a row more (itemgetter of one column gives the bare value)
        self.parameters: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*self.columns)
            if len(self.columns) > 1
            else lambda row: tuple([row[column] for column in self.columns])
        )


class SqliteWriter:
    """Writes through one raw cursor of a transaction on the synchronous engine (see :meth:`transaction`)."""

    def __init__(self, engine: Engine, spans: CompiledInsert, terms: CompiledInsert, summaries: CompiledInsert) -> None:
        self.engine = engine
        self._spans, self._terms, self._summaries = spans, terms, summaries
        self.lock = asyncio.Lock()
        """Held by each of this writer's transactions, so that in this process they never wait on each other in
        SQLite (another process's writes on the file wait for SQLite's own lock)."""
        self.checkpoints = WalCheckpoints(engine)
        """Checkpoints the WAL after each write (see :mod:`.wal_checkpoints`): call its ``after_write``."""
        self.term_index = TermIndex(engine, self.lock, self.checkpoints)
        """Moves the terms that ``terms`` wrote into the term index (see :mod:`.term_index`): call its
        ``index_soon`` after each write."""

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        with _as_sqlalchemy_errors(), self.engine.begin() as connection:
            cursor = connection.connection.cursor()
            try:
                yield SqliteTransaction(self, cursor, connection)
            finally:
                cursor.close()


class SqliteTransaction:
    keyed_locks = False
    """A SQLite transaction holds the whole database's write lock: the order of its rows does not matter."""

    def __init__(self, writer: SqliteWriter, cursor: DBAPICursor, connection: Connection) -> None:
        self._writer = writer
        self._cursor = cursor
        self.connection = connection
        """The transaction's SQLAlchemy connection, for the statements that are not on the hot path."""

    def add_spans(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the span rows (a span already stored is left as it is); returns the rows that were new.

        All in one ``executemany`` first, inside a savepoint: its row count says whether every span was new,
        as it nearly always is. When some were stored already, the savepoint is rolled back and the rows go in
        one ``execute`` at a time, each row count saying whether that span was new."""
        sql, parameters, cursor = self._writer._spans.sql, self._writer._spans.parameters, self._cursor
        if not cursor.connection.in_transaction:  # the driver begins one only before a write; an outermost
            cursor.execute("BEGIN")  # savepoint would be a transaction of its own, its RELEASE a commit
        cursor.execute("SAVEPOINT plughost_spans")
        cursor.executemany(sql, [parameters(row) for row in rows])
        if cursor.rowcount == len(rows):
            cursor.execute("RELEASE plughost_spans")
            return rows
        cursor.execute("ROLLBACK TO plughost_spans")
        cursor.execute("RELEASE plughost_spans")
        added = []
        for row in rows:
            cursor.execute(sql, parameters(row))
            if cursor.rowcount == 1:
                added.append(row)
        return added

    def add_terms(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Insert term rows, tuples in the order of the statement's columns (waiting ones: see :mod:`.term_index`)."""
        self._cursor.executemany(self._writer._terms.sql, rows)

    def merge_summaries(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Upsert the summary rows one ``execute`` at a time (SQLite cannot return rows from ``executemany``);
        returns the traces that, merged, count more than one call."""
        sql, parameters, cursor = self._writer._summaries.sql, self._writer._summaries.parameters, self._cursor
        several = []
        for row in rows:
            workspace, trace_id, calls = cursor.execute(sql, parameters(row)).fetchone()
            if calls > 1:
                several.append((workspace, trace_id))
        return several


@contextmanager
def _as_sqlalchemy_errors() -> Iterator[None]:
    """The driver's errors as SQLAlchemy's classes (``IntegrityError``, ``OperationalError``, ...)."""
    try:
        yield
    except DBAPIError:
        raise
    except sqlite3.Error as error:
        raise DBAPIError.instance(None, None, error, sqlite3.Error) from error
