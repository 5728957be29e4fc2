"""The shared database: one async SQLAlchemy engine per app, and each plugin's Alembic migrations.

Embedded default: a SQLite file under the data dir, in WAL mode with a busy
timeout, so readers never block the writer. Scale-out: ``PLUGHOST_DATABASE_URL``
(``postgresql+asyncpg://...``). Plugins prefix their tables with
``plughost_<plugin>_`` and keep their Alembic history in a version table of
their own, so several plugins (and other applications) can share one database.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import importlib
import re
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlalchemy import Table, event, exc, func, select, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

SQLITE_BUSY_TIMEOUT_MS = 10_000


def on_conflict_insert(table: Table, dialect: str) -> sqlite.Insert | postgresql.Insert:
    """An ``INSERT`` into ``table`` that can say ``ON CONFLICT``, in the SQL of ``dialect`` (``"sqlite"`` or
    ``"postgresql"``, as ``engine.dialect.name`` says). Only the dialect in use is imported: PostgreSQL's
    is not, at start-up, on SQLite."""
    return _dialect(dialect).insert(table)  # type: ignore[no-any-return]


@functools.cache
def _dialect(name: str) -> Any:
    return importlib.import_module(f"sqlalchemy.dialects.{name}")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` for a transaction that reads and then writes: what it read holds until it commits.

    On SQLite it takes the write lock first (``BEGIN IMMEDIATE``), waiting out the busy timeout when another
    writer holds it. Under ``engine.begin()`` alone the driver (sqlite3, under aiosqlite) begins the
    transaction only at the first write: a read before it came from no transaction, and a concurrent
    writer's commit in between was overwritten (a lost update). A transaction whose first statement writes
    needs none of this (the driver's ``BEGIN`` comes just before that write, and SQLite waits for the lock),
    and a read whose staleness the writes check again anyway stays outside, on ``engine.connect()``: under
    this helper it would hold every other writer back. On PostgreSQL it is ``engine.begin()``."""
    async with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection


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
        engine.sync_engine.dialect.do_terminate = _stop_aiosqlite  # type: ignore[method-assign]
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def synchronous_twin(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file: a synchronous engine on the same file, tuned the same, for a transaction that runs
    whole in one worker thread (through the async driver, each statement is a hop to its thread and back).
    ``None`` for any other database (an in-memory SQLite one included: a second engine would not see it)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    twin = create_sync_engine(
        engine.url.set(drivername="sqlite"), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )
    event.listen(twin, "connect", _tune_sqlite)
    return twin


def _stop_aiosqlite(dbapi_connection: Any) -> None:
    """Terminate an aiosqlite connection (the pool does when a call on it was cut short): its worker thread
    closes the SQLite connection after what it runs now, and stops; nothing waits for it.

    SQLAlchemy's own terminate awaits a graceful close, shielded. A call cancelled twice (shutdown
    cancelling a task that a timeout had cancelled) stops the worker thread through the second
    cancel while the shielded close, cancelled in turn, awaits a stop the thread is no longer
    there to answer: ``asyncio.run`` then waits for it forever at exit (aiosqlite >= 0.22; the
    same hang as wapiti-scanner/wapiti#802).
    """
    dbapi_connection._terminate_force_close()


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


async def distinct_workspaces(engine: AsyncEngine, table: Table) -> list[str]:
    """The distinct values of ``table.c.workspace``, in order, skipping through an index that starts
    with ``workspace`` (a probe per workspace, not a scan of every row; SQLite and PostgreSQL alike)."""
    column = table.c.workspace
    walk = select(select(func.min(column)).scalar_subquery().label("name")).cte("walk", recursive=True)
    following = select(func.min(column)).where(column > walk.c.name).scalar_subquery()
    walk = walk.union_all(select(following.label("name")).where(walk.c.name.is_not(None)))
    async with engine.connect() as connection:
        names = await connection.scalars(select(walk.c.name).where(walk.c.name.is_not(None)))
        return list(names)


async def migrate(engine: AsyncEngine, migrations: Path, plugin: str, revision: str = "head") -> None:
    """Bring ``plugin``'s tables to its newest migration (Alembic ``upgrade head``), or to ``revision``
    (tests of a migration start from an older schema).

    Workers starting together take turns: PostgreSQL through an advisory lock,
    SQLite through a file lock beside the database file.
    """

    if revision == "head" and await _is_at_head(engine, migrations, plugin):
        return

    def upgrade(connection: Connection) -> None:
        from alembic import command  # imported only when a migration may be due: a quarter of start-up
        from alembic.config import Config

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


async def _is_at_head(engine: AsyncEngine, migrations: Path, plugin: str) -> bool:
    """Whether ``plugin``'s version table already holds its one head revision: read without Alembic, from
    the ``revision`` and ``down_revision`` lines of its migration files. Anything unusual (several heads,
    a file it cannot read that way, no version table yet) answers ``False``, and Alembic decides."""
    head = _single_head(migrations / "versions")
    if head is None:
        return False
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(text(f"SELECT version_num FROM plughost_{plugin}_alembic_version"))
            ).all()
    except exc.DBAPIError:  # no version table yet
        return False
    return [tuple(row) for row in stored] == [(head,)]


REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _single_head(versions: Path) -> str | None:
    """The revision that no other revision in ``versions`` revises, if there is exactly one."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(REVISION_LINE.findall(path.read_text()))
        if "revision" not in found or "down_revision" not in found:
            return None
        try:
            revision, down = ast.literal_eval(found["revision"]), ast.literal_eval(found["down_revision"])
        except (ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        revised.update(down if isinstance(down, tuple) else () if down is None else (down,))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


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
