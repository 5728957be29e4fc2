"""The shared database's engine: a SQLite call cancelled twice never hangs the event loop's exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

from core.database import create_engine, write_transaction

ROOT = Path(__file__).resolve().parents[1]

CANCELLED_TWICE = textwrap.dedent(
    """
    import asyncio, sqlite3, sys
    from sqlalchemy import text
    from core.database import create_engine

    async def main(path):
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")  # the write below waits on this lock, in aiosqlite's thread

        async def write():
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (1)"))

        task = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        task.cancel()  # a timeout, say
        await asyncio.sleep(0)
        task.cancel()  # then shutdown
        await asyncio.gather(task, return_exceptions=True)
        holder.rollback()
        print("cancelled twice", flush=True)

    asyncio.run(main(sys.argv[1]))
    print("the event loop exited", flush=True)
    """
)


def test_a_sqlite_call_cancelled_twice_lets_the_event_loop_exit(tmp_path: Path) -> None:
    try:
        finished = subprocess.run(
            [sys.executable, "-c", CANCELLED_TWICE, str(tmp_path / "plughost.db")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,  # the call waits at most the 10 s busy timeout; a hang is forever
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"the event loop never exited: {expired.stdout!r} {expired.stderr!r}") from None
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == ["cancelled twice", "the event loop exited"], finished.stderr


def driver_errors() -> list[tuple[BaseException, str]]:
    """Errors as the drivers raise them, with the cause each is classified as."""
    import sqlite3

    import asyncpg

    def sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
        error = sqlite3.OperationalError(message)
        error.sqlite_errorcode = code
        return error

    return [
        (asyncpg.CannotConnectNowError("the database system is starting up"), "starting"),
        (asyncpg.CannotConnectNowError("the database system is shutting down"), "shutting-down"),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), "shutting-down"),
        (asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"), "read-only"),
        (asyncpg.DiskFullError("could not extend file"), "disk-full"),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), "busy"),
        (asyncpg.ConnectionFailureError("connection failure"), "reset"),
        (sqlite_error(13, "database or disk is full"), "disk-full"),
        (sqlite_error(5, "database is locked"), "busy"),
        (sqlite_error(8, "attempt to write a readonly database"), "read-only"),
        (sqlite_error(10 | (3 << 8), "disk I/O error"), "io-error"),
    ]


def test_each_cause_of_an_outage_is_named_and_a_query_error_is_not_an_outage() -> None:
    from sqlalchemy import exc

    from core.unavailable import unavailable

    for error, cause in driver_errors():
        wrapped = exc.DBAPIError("SELECT 1", None, error)
        found = unavailable(wrapped)
        assert found is not None and found.cause == cause, (error, found)
    assert unavailable(exc.IntegrityError("INSERT", None, ValueError("UNIQUE constraint failed"))) is None
    assert unavailable(ConnectionRefusedError(111, "refused")) is None  # not raised by a database driver


def test_write_transactions_that_read_first_wait_for_each_other_on_sqlite(tmp_path: Path) -> None:
    """Two read-then-write transactions racing on one SQLite file both count: the second waits for the
    first's write lock. Under ``engine.begin()`` the first read outside any transaction (the driver begins
    one at the first write), and the second's increment was lost."""

    async def race() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'race.db'}")
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
            await connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
        first_has_read = asyncio.Event()

        async def increment(wait_before_writing: float) -> None:
            async with write_transaction(engine) as connection:
                n = (await connection.exec_driver_sql("SELECT n FROM counter")).scalar_one()
                first_has_read.set()
                await asyncio.sleep(wait_before_writing)  # the other writer tries meanwhile
                await connection.exec_driver_sql(f"UPDATE counter SET n = {n + 1}")

        async def second() -> None:
            await first_has_read.wait()
            await increment(0)

        await asyncio.gather(increment(0.3), second())
        async with engine.connect() as connection:
            total = (await connection.exec_driver_sql("SELECT n FROM counter")).scalar_one()
        await engine.dispose()
        return int(total)

    assert asyncio.run(race()) == 2  # neither increment lost, neither refused
