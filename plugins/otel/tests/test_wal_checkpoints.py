"""The span writer's WAL reaches the SQLite file through checkpoints after its writes, not inside them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from core.database import create_engine, migrate
from plugins.otel import MIGRATIONS
from plugins.otel.decode import to_rows
from plugins.otel.store import SpanStore
from plugins.otel.tests.test_search import AGENT, CLAUDE, PLAIN


def spans_in_the_file(path: Path) -> int:
    """The spans the database file holds, its WAL left unread (``immutable``): what checkpoints copied."""
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as connection:
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'plughost_otel_spans'").fetchone() is None:
            return 0
        return int(connection.execute("SELECT count(*) FROM plughost_otel_spans").fetchone()[0])


def test_a_write_is_checkpointed_into_the_file_after_it_commits(tmp_path: Path) -> None:
    path = tmp_path / "plughost.db"

    async def scenario() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        store = SpanStore(engine)
        try:
            await migrate(engine, MIGRATIONS, "otel")
            for made in (AGENT, CLAUDE, PLAIN):  # small commits: SQLite's own checkpoints wait for 1,000 pages
                await store.add(to_rows(made, workspace="default", project="p").rows)
            await store.aclose()  # waits for the checkpoint that follows the writes
            assert spans_in_the_file(path) == 7
        finally:
            await engine.dispose()

    asyncio.run(scenario())
