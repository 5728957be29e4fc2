"""Checkpoints of the span writer's SQLite WAL, in a bulk thread, off the path of the writes.

By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that commit copies
the pages into the database file and waits for two ``fdatasync`` calls. With the spans of a 50-span trace
and its search terms, that was every third commit, and 40 % of the writer thread's time at concurrency 1.
The writer's connections do not checkpoint (``wal_autocheckpoint=0``); after a write, a PASSIVE checkpoint
(it waits for no reader or writer) runs on a connection of its own, one at a time, a moment later: the
commits of that moment share one checkpoint, and a page that several of them changed is copied once.
Other connections to the file keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core import run_bulk

logger = logging.getLogger("plughost.otel")

CHECKPOINT_DELAY_SECONDS = 0.05
"""How long after a write its checkpoint starts (the WAL holds a few MB of commits meanwhile under load)."""


class WalCheckpoints:
    """Checkpoints of ``engine``'s database after its writes (see the module); its connections checkpoint no more."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending: asyncio.Task[None] | None = None
        event.listen(engine, "connect", _no_automatic_checkpoints)

    def after_write(self) -> None:
        """A write committed: a checkpoint will follow, unless one is already due."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._checkpoint_soon())

    async def _checkpoint_soon(self) -> None:
        await asyncio.sleep(CHECKPOINT_DELAY_SECONDS)
        try:
            await run_bulk(self._checkpoint, yield_cpu=True)  # disk writes and fdatasync: the GIL is let go
        except SQLAlchemyError as error:  # the next write's checkpoint tries again; SQLite's at close too
            logger.warning("a checkpoint of the span store's WAL failed: %s", error)

    def _checkpoint(self) -> None:
        with self._engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    async def aclose(self) -> None:
        """Wait for the checkpoint under way, if any."""
        if self._pending is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending


def _no_automatic_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
