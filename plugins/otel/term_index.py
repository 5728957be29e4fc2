"""The search terms of a SQLite span store, indexed a moment after their acknowledgement, many traces at once.

A trace's ~100 terms each add an entry to the end of that term's run in the term index (``workspace, key,
value``): a page per term, which the commit writes to the WAL. That was 2.5 of a 50-span trace's 3 ms of
SQLite work at concurrency 1, and traces committed together share those pages. So the acknowledging
transaction puts a trace's terms in ``plughost_otel_terms_pending``, keyed by trace like ``plughost_otel_terms``
(a page or two a trace), and :class:`TermIndex` moves them into ``plughost_otel_terms`` a moment later, up to
:data:`TRACES_PER_MOVE` traces a transaction, under the writer's lock, so no write waits on SQLite's.

Searches read both tables (see ``SpanStore._has_term``): an acknowledged trace is found by its terms at once.
Terms left waiting by a process that stopped are moved by the next store that starts on the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core import run_bulk

from .wal_checkpoints import WalCheckpoints

logger = logging.getLogger("plughost.otel")

INDEX_DELAY_SECONDS = 0.05
"""How long after a write its traces' terms are indexed: the traces acknowledged meanwhile share the move."""
TRACES_PER_MOVE = 64
"""Traces whose terms one transaction moves (about 15 ms at 112 terms a trace); ingest writes between moves."""

_COLUMNS = "workspace, key, value, trace_id"
_BATCH = "SELECT DISTINCT workspace, trace_id FROM plughost_otel_terms_pending ORDER BY workspace, trace_id LIMIT ?"
_MOVE = (
    f"INSERT OR IGNORE INTO plughost_otel_terms ({_COLUMNS}) SELECT {_COLUMNS} FROM plughost_otel_terms_pending"
    f" WHERE (workspace, trace_id) IN ({_BATCH})"
)
_COUNT = f"SELECT count(*) FROM ({_BATCH})"
_DELETE = f"DELETE FROM plughost_otel_terms_pending WHERE (workspace, trace_id) IN ({_BATCH})"


class TermIndex:
    """Moves waiting terms into the term index (see the module), on ``engine``, holding ``lock`` (the writer's);
    the WAL is checkpointed after a move as after any write (see :mod:`.wal_checkpoints`)."""

    def __init__(self, engine: Engine, lock: asyncio.Lock, checkpoints: WalCheckpoints) -> None:
        self._engine = engine
        self._lock = lock
        self._checkpoints = checkpoints
        self._soon: asyncio.Task[None] | None = None

    def index_soon(self) -> None:
        """Terms were written, or may wait from an earlier run: they are moved a moment from now."""
        if self._soon is None or self._soon.done():
            self._soon = asyncio.create_task(self._index_after_delay())

    async def _index_after_delay(self) -> None:
        await asyncio.sleep(INDEX_DELAY_SECONDS)
        # shielded: a cancel (the store closing, the loop's shutdown) lets the move under way end, lock and all;
        # a cancelled task would let go of the lock while its thread still wrote
        await asyncio.shield(self._index_logged())

    async def _index_logged(self) -> None:
        try:
            await self.index_now()
        except SQLAlchemyError as error:  # searches still find the waiting terms; the next write tries again
            logger.warning("moving search terms into the span store's index failed: %s", error)

    async def index_now(self) -> None:
        """Move every waiting term, :data:`TRACES_PER_MOVE` traces a transaction."""
        while True:
            async with self._lock:
                moved = await run_bulk(self._move)
            if moved:
                self._checkpoints.after_write()
            if moved < TRACES_PER_MOVE:
                return

    def _move(self) -> int:
        with self._engine.begin() as connection:  # its first statement writes: SQLite's write lock from there
            connection.exec_driver_sql(_MOVE, (TRACES_PER_MOVE,))
            moved: int = connection.exec_driver_sql(_COUNT, (TRACES_PER_MOVE,)).scalar_one()
            connection.exec_driver_sql(_DELETE, (TRACES_PER_MOVE,))
        return moved

    async def aclose(self) -> None:
        """Move what waits, after the move under way if any, which holds the lock till it ends (a failure is
        logged: the next start moves what is left)."""
        if self._soon is not None:
            self._soon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._soon
        try:
            await self.index_now()
        except SQLAlchemyError as error:
            logger.warning("search terms are left to index at the next start: %s", error)
