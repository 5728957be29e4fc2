"""Usage counters of gateway keys, where every process sees them: calls, tokens, spend and refusals per key
and time window, updated atomically in the shared database (an upsert that adds) or in Redis
(``HINCRBY``/``HINCRBYFLOAT``) when ``PLUGHOST_REDIS_URL`` is set.

A window is a string: ``minute:<minutes since 1970>``, ``day:2026-12-06``, ``week:2026-W49``,
``month:2026-12`` (UTC), or ``total``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Column, Float, Integer, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import on_conflict_insert, write_transaction
from core.unavailable import RETRY_AFTER_SECONDS, unavailable

from .store import metadata

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
TOTAL = "total"
MINUTE_WINDOW_KEPT_SECONDS = 180
PERIOD_WINDOW_KEPT_SECONDS = 40 * 86400


def outage(error: BaseException) -> str | None:
    """What a store of this plugin's checks (the shared database, or the counters' Redis) says of being down,
    in words for the client, when ``error`` says so; ``None`` for any other error."""
    cause = unavailable(error)
    if cause is not None:
        return cause.message
    if type(error).__module__.partition(".")[0] == "redis":
        return f"the key limits' Redis (PLUGHOST_REDIS_URL) cannot serve: {error}; retry in {RETRY_AFTER_SECONDS} s"
    return None


usage = Table(
    "plughost_security_usage",
    metadata,
    Column("key_name", String(200), primary_key=True),
    Column("window", String(32), primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("spend_usd", Float, nullable=False),
    Column("refused", Integer, nullable=False),
)


@dataclass(frozen=True)
class Usage:
    calls: int = 0
    tokens: int = 0
    spend_usd: float = 0.0
    refused: int = 0


def minute_window(now: float) -> str:
    return f"minute:{int(now // 60)}"


def period_window(period: Period, now: float) -> str:
    day = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return f"day:{day:%Y-%m-%d}"
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"week:{year}-W{week:02d}"
    return f"month:{day:%Y-%m}"


def seconds_left(window: str, now: float) -> int:
    """Seconds until ``window`` (as :func:`minute_window` or :func:`period_window` names it at ``now``) ends."""
    kind = window.partition(":")[0]
    if kind == "minute":
        return max(1, int(60 - now % 60) + 1)
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "day":
        end = day + timedelta(days=1)
    elif kind == "week":
        end = day + timedelta(days=7 - day.weekday())
    else:
        end = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return max(1, int(end.timestamp() - now) + 1)


class Counters(Protocol):
    async def add(
        self, key: str, windows: Sequence[str], *, calls: int = 0, tokens: int = 0, spend: float = 0, refused: int = 0
    ) -> int:
        """Add to ``key``'s counters in each window, atomically; returns the first window's calls after it."""
        ...

    async def read(self, key: str, windows: Sequence[str]) -> dict[str, Usage]: ...

    async def forget(self, key: str) -> None:
        """Drop every counter of ``key`` (deleted: a new key of its name starts from nothing)."""
        ...

    async def close(self) -> None: ...


def counters_for(redis_url: str | None, engine: AsyncEngine) -> Counters:
    """Redis when ``PLUGHOST_REDIS_URL`` is set, else the shared database."""
    return RedisCounters(redis_url) if redis_url else DatabaseCounters(engine)


class DatabaseCounters:
    """In the shared database: an ``INSERT ... ON CONFLICT DO UPDATE SET calls = calls + ...`` per window,
    one transaction per change (PostgreSQL for several hosts; SQLite serialises its writers)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"

    async def add(
        self, key: str, windows: Sequence[str], *, calls: int = 0, tokens: int = 0, spend: float = 0, refused: int = 0
    ) -> int:
        first = 0
        async with write_transaction(self.engine) as connection:
            for position, window in enumerate(windows):
                insert = on_conflict_insert(usage, self.dialect).values(
                    key_name=key, window=window, calls=calls, tokens=tokens, spend_usd=spend, refused=refused
                )
                upsert = insert.on_conflict_do_update(
                    index_elements=[usage.c.key_name, usage.c.window],
                    set_={
                        "calls": usage.c.calls + insert.excluded.calls,
                        "tokens": usage.c.tokens + insert.excluded.tokens,
                        "spend_usd": usage.c.spend_usd + insert.excluded.spend_usd,
                        "refused": usage.c.refused + insert.excluded.refused,
                    },
                ).returning(usage.c.calls)
                counted = (await connection.execute(upsert)).scalar_one()
                if position == 0:
                    first = int(counted)
        return first

    async def read(self, key: str, windows: Sequence[str]) -> dict[str, Usage]:
        query = select(usage).where(usage.c.key_name == key, usage.c.window.in_(list(windows)))
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row.window: Usage(row.calls, row.tokens, row.spend_usd, row.refused) for row in rows}

    async def forget(self, key: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(usage).where(usage.c.key_name == key))

    async def close(self) -> None:
        pass


class RedisCounters:
    """In Redis: a hash per key and window, changed with ``HINCRBY``/``HINCRBYFLOAT`` in one transaction;
    minute windows expire after a few minutes, periods after 40 days."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.redis: Any = Redis.from_url(url)

    @staticmethod
    def _name(key: str, window: str) -> str:
        return f"plughost:security:usage:{key}:{window}"

    async def add(
        self, key: str, windows: Sequence[str], *, calls: int = 0, tokens: int = 0, spend: float = 0, refused: int = 0
    ) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            for window in windows:
                name = self._name(key, window)
                pipe.hincrby(name, "calls", calls)
                pipe.hincrby(name, "tokens", tokens)
                pipe.hincrbyfloat(name, "spend_usd", spend)
                pipe.hincrby(name, "refused", refused)
                if window != TOTAL:
                    kept = MINUTE_WINDOW_KEPT_SECONDS if window.startswith("minute:") else PERIOD_WINDOW_KEPT_SECONDS
                    pipe.expire(name, kept)
            results = await pipe.execute()
        return int(results[0]) if results else 0

    async def read(self, key: str, windows: Sequence[str]) -> dict[str, Usage]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for window in windows:
                pipe.hgetall(self._name(key, window))
            found = await pipe.execute()
        read: dict[str, Usage] = {}
        for window, fields in zip(windows, found, strict=True):
            if fields:
                values = {name.decode(): value.decode() for name, value in fields.items()}
                read[window] = Usage(
                    int(values.get("calls", 0)),
                    int(values.get("tokens", 0)),
                    float(values.get("spend_usd", 0)),
                    int(values.get("refused", 0)),
                )
        return read

    async def forget(self, key: str) -> None:
        names = [name async for name in self.redis.scan_iter(match=self._name(key, "*"))]
        if names:
            await self.redis.delete(*names)

    async def close(self) -> None:
        await self.redis.aclose()
