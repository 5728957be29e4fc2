"""The shared database: one async SQLAlchemy engine per app, and each plugin's Alembic migrations.

Embedded default: a SQLite file under the data dir, in WAL mode with a busy
timeout, so readers never block the writer. Scale-out: ``PLUGHOST_DATABASE_URL``
(``postgresql+asyncpg://...``). Plugins prefix their tables with
``plughost_<plugin>_`` and keep their Alembic history in a version table of
their own, so several plugins (and other applications) can share one database.
"""

from __future__ import annotations

import fcntl
import logging
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.requests import Request
from starlette.responses import JSONResponse

SQLITE_BUSY_TIMEOUT_MS = 10_000
RETRY_AFTER_SECONDS = 5

UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)
"""Errors that mean the database is down, unreachable or busy (not that the query is wrong)."""

logger = logging.getLogger("plughost")


def database_url(configured: str | None, data_dir: Path) -> str:
    """The configured URL, or the embedded SQLite file under ``data_dir``."""
    if configured:
        return configured
    return f"sqlite+aiosqlite:///{(data_dir / 'plughost.db').resolve()}"


def create_engine(url: str) -> AsyncEngine:
    """An engine tuned for its backend: SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "synchronous=NORMAL",  # with WAL: durable across crashes of the process, not of the machine
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


async def migrate(engine: AsyncEngine, migrations: Path, plugin: str, revision: str = "head") -> None:
    """Bring ``plugin``'s tables to its newest migration (Alembic ``upgrade head``), or to ``revision``
    (tests of a migration start from an older schema).

    Workers starting together take turns: PostgreSQL through an advisory lock,
    SQLite through a file lock beside the database file.
    """

    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(migrations))
        config.attributes["connection"] = connection
        config.attributes["version_table"] = f"plughost_{plugin}_alembic_version"
        config.attributes["table_prefix"] = f"plughost_{plugin}_"
        command.upgrade(config, revision)

    async with _migration_lock(engine, plugin), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            key = zlib.crc32(f"plughost-migrate-{plugin}".encode())
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        await connection.run_sync(upgrade)


@asynccontextmanager
async def migrated(engine: AsyncEngine, migrations: Path, plugin: str) -> AsyncIterator[None]:
    """A lifespan for ``plughost_lifespan``: the plugin's tables are migrated before the first request."""
    await migrate(engine, migrations, plugin)
    yield


@asynccontextmanager
async def _migration_lock(engine: AsyncEngine, plugin: str) -> AsyncIterator[None]:
    """Across processes on one machine: a file lock next to a SQLite database (no-op otherwise)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_file = await anyio.to_thread.run_sync(open, f"{database}.{plugin}.migrate-lock", "w")
    with lock_file:
        await anyio.to_thread.run_sync(fcntl.flock, lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def run_migrations(target_metadata: Any) -> None:
    """The body of a plugin's Alembic ``env.py``: migrate on the connection :func:`migrate` passes,
    in the plugin's own version table, looking only at the plugin's own tables."""
    from alembic import context

    config = context.config
    connection: Connection = config.attributes["connection"]
    prefix: str = config.attributes["table_prefix"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        include_name=lambda name, type_, _parent: type_ != "table" or bool(name and name.startswith(prefix)),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def answer_unavailable(request: Request, error: Exception) -> JSONResponse:
    """The app's handler for :data:`UNAVAILABLE`: 503 with ``Retry-After``, never a 500, for any plugin's store."""
    logger.warning("%s %s: database unavailable: %s", request.method, request.url.path, type(error).__name__)
    return JSONResponse(
        {"detail": "the database is unavailable or busy; retry shortly"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
