"""The shared database's engine: a SQLite call cancelled twice never hangs the event loop's exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
