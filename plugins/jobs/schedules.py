"""Schedules: their table, their timetable, and the atomic firing of a due tick.

A tick is claimed with one conditional ``UPDATE ... SET next_run = <following tick>
WHERE id = ... AND next_run = <the tick> AND NOT paused``, and its job is inserted
in the same transaction: of any number of servers and workers that see the same
due tick, exactly one moves ``next_run`` on and queues the job; the others'
``UPDATE`` matches no row. The ticks of a schedule are a fixed sequence (an
interval keeps its phase, a cron expression its times), so a tick runs once or,
when it was missed while nothing ran, per the schedule's ``catch_up``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Row,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from core.context import current_workspace
from core.database import on_conflict_insert

from .store import JobStore, Submission, metadata

schedules = Table(
    "plughost_jobs_schedules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(64), nullable=False),
    Column("declared_by", String(64)),
    Column("type", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("cron", String(200)),
    Column("interval_seconds", Float),
    Column("timezone", String(64), nullable=False),
    Column("catch_up", String(16), nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("next_run", Float, nullable=False),
    Column("last_run", Float),
    Column("last_job_id", String(32)),
    Column("created_at", Float, nullable=False),
)
Index("plughost_jobs_schedules_name", schedules.c.workspace, schedules.c.name, unique=True)
Index("plughost_jobs_schedules_due", schedules.c.paused, schedules.c.next_run)


@dataclass(frozen=True)
class Timing:
    cron: str | None
    interval_seconds: float | None
    timezone: str

    def first(self, now: float) -> float:
        """The first tick after ``now`` (an interval's first tick is one interval from now)."""
        if self.interval_seconds is not None:
            return now + self.interval_seconds
        return self.after(now)

    def after(self, moment: float) -> float:
        """The first cron tick strictly after ``moment`` (cron only)."""
        assert self.cron is not None
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(moment, zone)
        for tick in CronSim(self.cron, start):
            if tick.timestamp() > moment:
                return tick.timestamp()
        raise ValueError(f"cron expression {self.cron!r} has no future time")

    def following(self, tick: float, now: float) -> float:
        """The tick after ``tick`` that is still ahead of ``now`` (ticks in between are the missed ones)."""
        if self.interval_seconds is not None:
            step = self.interval_seconds
            missed = max(0, math.floor((now - tick) / step))
            following = tick + (missed + 1) * step
            return following if following > now else following + step
        following = self.after(tick)
        return following if following > now else self.after(now)

    @classmethod
    def of(cls, row: Row[Any]) -> Timing:
        return cls(row.cron, row.interval_seconds, row.timezone)


@dataclass(frozen=True)
class NewSchedule:
    name: str
    type: str
    params: dict[str, Any]
    timing: Timing
    catch_up: str
    paused: bool = False
    declared_by: str | None = None


class ScheduleStore:
    def __init__(self, engine: AsyncEngine, jobs: JobStore) -> None:
        self.engine = engine
        self.jobs = jobs

    def _values(self, new: NewSchedule, workspace: str, now: float) -> dict[str, Any]:
        schedule_id = uuid.uuid4().hex
        return {
            "id": schedule_id,
            "workspace": workspace,
            "name": new.name or schedule_id,
            "declared_by": new.declared_by,
            "type": new.type,
            "params": json.dumps(new.params, separators=(",", ":")),
            "cron": new.timing.cron,
            "interval_seconds": new.timing.interval_seconds,
            "timezone": new.timing.timezone,
            "catch_up": new.catch_up,
            "paused": new.paused,
            "next_run": new.timing.first(now),
            "created_at": now,
        }

    # -- the API's side: scoped by the current workspace ------------------------------------

    async def create(self, new: NewSchedule) -> Row[Any] | None:
        """The new schedule, or ``None`` when the workspace already has one of that name."""
        values = self._values(new, current_workspace(), time.time())
        statement = self._insert().values(values).on_conflict_do_nothing().returning(*schedules.c)
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).one_or_none()

    async def in_workspace(self) -> list[Row[Any]]:
        query = select(schedules).where(schedules.c.workspace == current_workspace()).order_by(schedules.c.name)
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).all())

    async def get(self, schedule_id: str) -> Row[Any] | None:
        query = select(schedules).where(schedules.c.id == schedule_id, schedules.c.workspace == current_workspace())
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).one_or_none()

    async def set_paused(self, schedule_id: str, paused: bool) -> Row[Any] | None:
        """Pause, or resume from the next tick after now (ticks while paused are not caught up)."""
        row = await self.get(schedule_id)
        if row is None:
            return None
        values: dict[str, Any] = {"paused": paused}
        now = time.time()
        if not paused and row.paused and row.next_run <= now:
            values["next_run"] = Timing.of(row).following(row.next_run, now)
        statement = (
            update(schedules)
            .where(schedules.c.id == schedule_id, schedules.c.workspace == current_workspace())
            .values(values)
            .returning(*schedules.c)
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).one_or_none()

    async def delete(self, schedule_id: str) -> bool:
        statement = delete(schedules).where(schedules.c.id == schedule_id, schedules.c.workspace == current_workspace())
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1

    # -- start-up: schedules declared by plugins --------------------------------------------

    async def declare(self, plugin: str, declared: Sequence[tuple[str, NewSchedule]]) -> None:
        """Upsert ``plugin``'s ``(workspace, schedule)`` pairs by name, keeping paused state and, if the
        timing is unchanged, the next tick; delete what it declared before and no longer does."""
        now = time.time()
        async with self.engine.begin() as connection:
            for workspace, new in declared:
                values = self._values(new, workspace, now)
                statement = self._insert().values(values)
                excluded = statement.excluded
                same_timing = and_(
                    schedules.c.cron.is_not_distinct_from(excluded.cron),
                    schedules.c.interval_seconds.is_not_distinct_from(excluded.interval_seconds),
                    schedules.c.timezone == excluded.timezone,
                )
                await connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[schedules.c.workspace, schedules.c.name],
                        set_={
                            "declared_by": excluded.declared_by,
                            "type": excluded.type,
                            "params": excluded.params,
                            "cron": excluded.cron,
                            "interval_seconds": excluded.interval_seconds,
                            "timezone": excluded.timezone,
                            "catch_up": excluded.catch_up,
                            "next_run": case((same_timing, schedules.c.next_run), else_=excluded.next_run),
                        },
                    )
                )
            kept = [
                and_(schedules.c.workspace == workspace, schedules.c.name == new.name) for workspace, new in declared
            ]
            stale = delete(schedules).where(schedules.c.declared_by == plugin)
            for condition in kept:
                stale = stale.where(~condition)
            await connection.execute(stale)

    # -- the workers' side -------------------------------------------------------------------

    async def due(self, types: Collection[str], now: float) -> list[Row[Any]]:
        if not types:
            return []
        query = select(schedules).where(
            schedules.c.paused.is_(False), schedules.c.next_run <= now, schedules.c.type.in_(sorted(types))
        )
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).all())

    async def next_due(self, types: Collection[str]) -> float | None:
        if not types:
            return None
        query = select(func.min(schedules.c.next_run)).where(
            schedules.c.paused.is_(False), schedules.c.type.in_(sorted(types))
        )
        async with self.engine.connect() as connection:
            due: float | None = (await connection.execute(query)).scalar_one_or_none()
        return due

    async def fire(self, row: Row[Any], submission: Submission, now: float, misfire_grace: float) -> Row[Any] | None:
        """Claim the due tick ``row.next_run`` and queue its job, in one transaction. Returns the job, or
        ``None`` when another process claimed this tick first or the tick was missed and is skipped."""
        missed = now - row.next_run > misfire_grace
        timing = Timing.of(row)
        next_run = timing.following(row.next_run, now if missed else row.next_run)
        claim = (
            update(schedules)
            .where(schedules.c.id == row.id, schedules.c.next_run == row.next_run, schedules.c.paused.is_(False))
            .values(next_run=next_run, last_run=now)
        )
        async with self.engine.begin() as connection:
            if (await connection.execute(claim)).rowcount != 1:
                return None  # another worker fired this tick, or it was paused, changed or deleted meanwhile
            if missed and row.catch_up == "skip":
                return None
            job = await self.jobs.insert_job(connection, submission, row.workspace)
            await connection.execute(update(schedules).where(schedules.c.id == row.id).values(last_job_id=job.id))
            return job

    def _insert(self) -> Any:
        return on_conflict_insert(schedules, "postgresql" if self.jobs.postgresql else "sqlite")
