"""The search terms of a SQLite span store, indexed a moment after their acknowledgement, many traces at once.

A trace's ~100 terms each add an entry to the end of that term's run in the term index (``workspace, key,
value``): a page per term, which the commit writes to the WAL. That was 2.5 of a 50-span trace's 3 ms of
SQLite work at concurrency 1, and traces committed together share those pages. So the acknowledging
transaction puts a trace's terms in ``plughost_otel_terms_pending``, keyed by trace like ``plughost_otel_terms``
(a page or two a trace), and :class:`TermIndex` moves them into ``plughost_otel_terms`` a moment later,
:data:`TERMS_PER_MOVE` rows a transaction, under the writer's lock, so no write waits on SQLite's, and none waits
long on the lock: a move takes the first rows of the waiting table by its key, however many a trace has.

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
TERMS_PER_MOVE = 8192
"""Term rows one transaction moves (11 ms on a quiet 2-core machine): ingest writes between moves, however many
terms a trace has (the 1.8 M terms of one span of as many attributes, moved in one transaction, held the writer's
lock for 2.6 s)."""

_COLUMNS = "workspace, key, value, trace_id"
_KEY = "workspace, trace_id, key, value"
"""The waiting table's primary key: a move takes its rows in this order, up to the last one it counts."""
_LAST_OF_MOVE = f"SELECT {_KEY} FROM plughost_otel_terms_pending ORDER BY {_KEY} LIMIT 1 OFFSET ?"
_UP_TO_LAST = f" WHERE ({_KEY}) <= (?, ?, ?, ?)"
_MOVE = f"INSERT OR IGNORE INTO plughost_otel_terms ({_COLUMNS}) SELECT {_COLUMNS} FROM plughost_otel_terms_pending"
_DELETE = "DELETE FROM plughost_otel_terms_pending"


class TermIndex:
    """Moves waiting terms into the term index (see the module), on ``engine``, holding ``lock`` (the writer's);
    the WAL is checkpointed after a move as after any write (see :mod:`.wal_checkpoints`)."""

    def __init__(self, engine: Engine, lock: asyncio.Lock, checkpoints: WalCheckpoints) -> None:
        self._engine = engine
        self._lock = lock
        self._checkpoints = checkpoints
        self._soon: asyncio.Task[None] | None = None
        self._moving: asyncio.Task[None] | None = None
        """The moves that ``_soon`` started, shielded from its cancel: the store has closed once they end too."""

    def index_soon(self) -> None:
        """Terms were written, or may wait from an earlier run: they are moved a moment from now."""
        if self._soon is None or self._soon.done():
            self._soon = asyncio.create_task(self._index_after_delay())

    async def _index_after_delay(self) -> None:
        await asyncio.sleep(INDEX_DELAY_SECONDS)
        # shielded: a cancel (the store closing, the loop's shutdown) lets the move under way end, lock and all;
        # a cancelled task would let go of the lock while its thread still wrote
        self._moving = asyncio.create_task(self._index_logged())
        await asyncio.shield(self._moving)

    async def _index_logged(self) -> None:
        try:
            await self.index_now()
        except SQLAlchemyError as error:  # searches still find the waiting terms; the next write tries again
            logger.warning("moving search terms into the span store's index failed: %s", error)

    async def index_now(self) -> None:
        """Move every waiting term, :data:`TERMS_PER_MOVE` rows a transaction, letting go of the lock between them."""
        while True:
            async with self._lock:
                moved = await run_bulk(self._move)
            if moved:
                self._checkpoints.after_write()
            if moved < TERMS_PER_MOVE:
                return

    def _move(self) -> int:
        """Move the first :data:`TERMS_PER_MOVE` waiting rows (all of them when fewer wait); returns how many moved."""
        with self._engine.begin() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's write lock first: the rows counted are those moved
            last = connection.exec_driver_sql(_LAST_OF_MOVE, (TERMS_PER_MOVE - 1,)).first()
            where, bounds = (_UP_TO_LAST, tuple(last)) if last is not None else ("", ())
            connection.exec_driver_sql(_MOVE + where, bounds)
            moved: int = connection.exec_driver_sql(_DELETE + where, bounds).rowcount
        return moved

    async def aclose(self) -> None:
        """Move what waits, once the moves under way, if any, have ended (they take turns on the lock with the
        closing ones otherwise, and one could outlive the store). A failure is logged: the next start moves what
        is left."""
        if self._soon is not None:
            self._soon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._soon
        if self._moving is not None:
            await asyncio.shield(self._moving)  # its failures are logged, not raised
        try:
            await self.index_now()
        except SQLAlchemyError as error:
            logger.warning("search terms are left to index at the next start: %s", error)
