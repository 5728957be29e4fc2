"""The jobs table, which is also the queue.

Every state change is one conditional ``UPDATE``, so concurrent API servers and
workers never act on a stale read: a claim is a single ``WITH due AS (...) UPDATE ... RETURNING``
(the CTE takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
writers), and a worker may only finish, renew or release jobs whose lease it
still holds. On PostgreSQL, submits and cancels also ``NOTIFY`` idle workers.
Times are epoch seconds from the writer's clock: keep the hosts' clocks synced.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.context import current_workspace

PENDING, RUNNING, SUCCEEDED, FAILED, TIMEOUT, CANCELED = (
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMEOUT",
    "CANCELED",
)
STATES = (PENDING, RUNNING, SUCCEEDED, FAILED, TIMEOUT, CANCELED)
FINISHED = frozenset({SUCCEEDED, FAILED, TIMEOUT, CANCELED})

SUBMITTED_CHANNEL = "plughost_jobs_submitted"
CANCEL_CHANNEL = "plughost_jobs_cancel"

metadata = MetaData()

jobs = Table(
    "plughost_jobs_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column("type", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("requeue_lost", Boolean, nullable=False),
    Column("timeout_seconds", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("run_after", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("lease_owner", String(64)),
    Column("lease_expires", Float),
    Column("cancel_requested", Boolean, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("progress", Float),
    Column("progress_message", Text),
    Column("schedule_id", String(32)),
    Column("scheduled_for", Float),
)
Index("plughost_jobs_queue", jobs.c.status, jobs.c.run_after)
Index("plughost_jobs_listing", jobs.c.workspace, jobs.c.created_at, jobs.c.id)

logs = Table(
    "plughost_jobs_logs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", Text, nullable=False),
)
"""A job's output as chunks at byte offsets of its whole log;
chunks wholly before the last ``max_log_bytes`` are deleted."""


@dataclass(frozen=True)
class Submission:
    type: str
    params: dict[str, Any]
    timeout_seconds: float
    max_attempts: int
    requeue_lost: bool
    schedule_id: str | None = None
    scheduled_for: float | None = None


@dataclass(frozen=True)
class Page:
    rows: list[Row[Any]]
    next_cursor: tuple[float, str] | None


class JobStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgresql = engine.dialect.name == "postgresql"

    # -- the API's side: scoped by the current workspace ------------------------------------

    async def submit(self, submission: Submission) -> Row[Any]:
        async with self.engine.begin() as connection:
            return await self.insert_job(connection, submission, current_workspace())

    async def insert_job(self, connection: AsyncConnection, submission: Submission, workspace: str) -> Row[Any]:
        """Queue a job within ``connection``'s transaction (a submit, or a schedule's tick)."""
        now = time.time()
        values = {
            "id": uuid.uuid4().hex,
            "workspace": workspace,
            "type": submission.type,
            "params": json.dumps(submission.params, separators=(",", ":")),
            "status": PENDING,
            "attempt": 0,
            "max_attempts": submission.max_attempts,
            "requeue_lost": submission.requeue_lost,
            "timeout_seconds": submission.timeout_seconds,
            "created_at": now,
            "run_after": now,
            "cancel_requested": False,
            "schedule_id": submission.schedule_id,
            "scheduled_for": submission.scheduled_for,
        }
        row = (await connection.execute(insert(jobs).values(values).returning(*jobs.c))).one()
        await self._notify(connection, SUBMITTED_CHANNEL, submission.type)
        return row

    async def get(self, job_id: str) -> Row[Any] | None:
        async with self.engine.connect() as connection:
            query = select(jobs).where(jobs.c.id == job_id, jobs.c.workspace == current_workspace())
            return (await connection.execute(query)).one_or_none()

    async def page(
        self,
        *,
        type: str | None,
        status: str | None,
        limit: int,
        after: tuple[float, str] | None,
        schedule_id: str | None = None,
    ) -> Page:
        """Newest first; ``after`` is the ``(created_at, id)`` cursor a previous page ended with."""
        query = select(jobs).where(jobs.c.workspace == current_workspace())
        if type is not None:
            query = query.where(jobs.c.type == type)
        if status is not None:
            query = query.where(jobs.c.status == status)
        if schedule_id is not None:
            query = query.where(jobs.c.schedule_id == schedule_id)
        if after is not None:
            created_at, job_id = after
            query = query.where(
                or_(jobs.c.created_at < created_at, and_(jobs.c.created_at == created_at, jobs.c.id < job_id))
            )
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        async with self.engine.connect() as connection:
            rows = list((await connection.execute(query)).all())
        if len(rows) <= limit:
            return Page(rows, None)
        return Page(rows[:limit], (rows[limit - 1].created_at, rows[limit - 1].id))

    async def cancel(self, job_id: str) -> tuple[str, Row[Any] | None]:
        """Cancel a job of the current workspace.

        Returns ``("canceled", row)`` for a job that had not started, ``("requested", row)``
        for a running one (its worker kills it within a heartbeat), ``("finished", row)``
        or ``("unknown", None)``.
        """
        mine = and_(jobs.c.id == job_id, jobs.c.workspace == current_workspace())
        async with self.engine.begin() as connection:
            canceled = (
                await connection.execute(
                    update(jobs)
                    .where(mine, jobs.c.status == PENDING)
                    .values(status=CANCELED, finished_at=time.time(), error="canceled before it started")
                    .returning(*jobs.c)
                )
            ).one_or_none()
            if canceled is not None:
                return "canceled", canceled
            requested = (
                await connection.execute(
                    update(jobs).where(mine, jobs.c.status == RUNNING).values(cancel_requested=True).returning(*jobs.c)
                )
            ).one_or_none()
            if requested is not None:
                await self._notify(connection, CANCEL_CHANNEL, job_id)
                return "requested", requested
            row = (await connection.execute(select(jobs).where(mine))).one_or_none()
        return ("unknown", None) if row is None else ("finished", row)

    async def delete_finished(self, job_id: str) -> tuple[str, Row[Any] | None]:
        """Delete a finished job of the current workspace and its logs: ``("deleted", row)``,
        ``("unfinished", row)`` or ``("unknown", None)``."""
        mine = and_(jobs.c.id == job_id, jobs.c.workspace == current_workspace())
        async with self.engine.begin() as connection:
            deleted = (
                await connection.execute(
                    delete(jobs).where(mine, jobs.c.status.in_(sorted(FINISHED))).returning(*jobs.c)
                )
            ).one_or_none()
            if deleted is not None:
                await connection.execute(delete(logs).where(logs.c.job_id == job_id))
                return "deleted", deleted
            row = (await connection.execute(select(jobs).where(mine))).one_or_none()
        return ("unknown", None) if row is None else ("unfinished", row)

    async def log_chunks(self, job_id: str, after: int = 0) -> list[Row[Any]]:
        """The stored chunks of a job's log that end after byte ``after``, in order."""
        query = select(logs).where(logs.c.job_id == job_id, logs.c.offset + logs.c.size > after).order_by(logs.c.offset)
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).all())

    # -- the workers' side: every workspace ---------------------------------------------------

    async def claim(self, owner: str, types: Collection[str], limit: int, lease_seconds: float) -> list[Row[Any]]:
        """Take up to ``limit`` due jobs of ``types``: RUNNING, leased to ``owner``, one more attempt."""
        if not types or limit < 1:
            return []
        now = time.time()
        due = (
            select(jobs.c.id)
            .where(jobs.c.status == PENDING, jobs.c.run_after <= now, jobs.c.type.in_(sorted(types)))
            .order_by(jobs.c.run_after, jobs.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds one writer at a time anyway
            .cte("due")  # evaluated once: as an IN (...) sub-select PostgreSQL may re-run it per row
        )
        claim = (
            update(jobs)
            .where(jobs.c.id == due.c.id, jobs.c.status == PENDING)
            .values(
                status=RUNNING,
                attempt=jobs.c.attempt + 1,
                started_at=now,
                lease_owner=owner,
                lease_expires=now + lease_seconds,
                progress=None,
                progress_message=None,
            )
            .returning(*jobs.c)
        )
        async with self.engine.begin() as connection:
            return sorted((await connection.execute(claim)).all(), key=lambda row: (row.run_after, row.created_at))

    async def next_due(self, types: Collection[str]) -> float | None:
        """When the earliest pending job of ``types`` becomes due (epoch seconds), if any."""
        if not types:
            return None
        query = select(func.min(jobs.c.run_after)).where(jobs.c.status == PENDING, jobs.c.type.in_(sorted(types)))
        async with self.engine.connect() as connection:
            due: float | None = (await connection.execute(query)).scalar_one_or_none()
        return due

    async def renew(self, owner: str, job_ids: Sequence[str], lease_seconds: float) -> dict[str, bool]:
        """Extend ``owner``'s leases on ``job_ids``; returns, for each job still held, whether a cancel was asked."""
        if not job_ids:
            return {}
        renew = (
            update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
            .values(lease_expires=time.time() + lease_seconds)
            .returning(jobs.c.id, jobs.c.cancel_requested)
        )
        async with self.engine.begin() as connection:
            return {row.id: row.cancel_requested for row in await connection.execute(renew)}

    async def finish(
        self,
        job_id: str,
        owner: str,
        status: str,
        *,
        result: str | None = None,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> bool:
        """Record the end of ``owner``'s attempt; with ``retry_at`` the job goes back to PENDING until then.

        Returns False when the lease was lost meanwhile (the outcome is then not recorded).
        """
        now = time.time()
        if retry_at is not None:
            values: dict[str, Any] = {"status": PENDING, "run_after": retry_at, "error": error}
        else:
            values = {"status": status, "finished_at": now, "result": result, "error": error}
        values.update(lease_owner=None, lease_expires=None)
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
            .values(values)
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1

    async def release(self, job_id: str, owner: str) -> bool:
        """Give a job back unfinished (worker shutdown): PENDING again, the attempt not counted (and
        a job back at attempt 0 has not started: no ``started_at``)."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
            .values(
                status=PENDING,
                attempt=jobs.c.attempt - 1,
                started_at=case((jobs.c.attempt > 1, jobs.c.started_at), else_=null()),
                run_after=time.time(),
                lease_owner=None,
                lease_expires=None,
            )
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1

    async def recover_lost(self) -> list[Row[Any]]:
        """Jobs whose lease expired (their worker died): canceled if a cancel was asked, re-queued
        if their policy allows and attempts remain, failed otherwise. Returns the changed jobs."""
        now = time.time()
        lost = and_(jobs.c.status == RUNNING, jobs.c.lease_expires < now)
        cleared = {"lease_owner": None, "lease_expires": None}
        message = "its worker stopped renewing the lease (process died or lost the database)"
        changes = (
            (
                and_(lost, jobs.c.cancel_requested.is_(True)),
                {"status": CANCELED, "finished_at": now, "error": "canceled"},
            ),
            (
                and_(lost, jobs.c.requeue_lost.is_(True), jobs.c.attempt < jobs.c.max_attempts),
                {"status": PENDING, "run_after": now, "error": f"attempt lost: {message}; re-queued"},
            ),
            (lost, {"status": FAILED, "finished_at": now, "error": f"lost: {message}"}),
        )
        recovered: list[Row[Any]] = []
        async with self.engine.begin() as connection:
            if (await connection.execute(select(jobs.c.id).where(lost).limit(1))).first() is None:
                return recovered  # the common case, answered without taking SQLite's write lock
            for condition, values in changes:
                statement = (
                    update(jobs)
                    .where(condition)
                    .values({**values, **cleared})
                    .returning(jobs.c.id, jobs.c.status, jobs.c.type)
                )
                recovered.extend((await connection.execute(statement)).all())
            if any(row.status == PENDING for row in recovered):
                await self._notify(connection, SUBMITTED_CHANNEL, "recovered")
        return recovered

    async def log_size(self, job_id: str) -> int:
        """Bytes logged so far by every attempt of the job (where the next attempt's output starts)."""
        query = select(func.max(logs.c.offset + logs.c.size)).where(logs.c.job_id == job_id)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one_or_none() or 0)

    async def report(
        self,
        job_id: str,
        owner: str,
        *,
        chunk: tuple[int, bytes] | None,
        keep_from: int,
        progress: tuple[float | None, str] | None,
    ) -> None:
        """Store a running job's new output (``(offset, bytes)``), drop chunks wholly before byte ``keep_from``,
        and record its progress; only while ``owner`` holds the job."""
        async with self.engine.begin() as connection:
            if progress is not None:
                changed = await connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
                    .values(progress=progress[0], progress_message=progress[1])
                )
                if changed.rowcount != 1:
                    return
            if chunk is not None:
                offset, data = chunk
                text_data = data.decode("utf-8", "replace").replace("\x00", "\ufffd")  # PostgreSQL text holds no NUL
                await connection.execute(
                    insert(logs).values(job_id=job_id, offset=offset, size=len(data), data=text_data)
                )
            if keep_from > 0:
                await connection.execute(
                    delete(logs).where(logs.c.job_id == job_id, logs.c.offset + logs.c.size <= keep_from)
                )

    async def _notify(self, connection: AsyncConnection, channel: str, payload: str) -> None:
        """Wake PostgreSQL listeners when the transaction commits (a no-op on SQLite)."""
        if self.postgresql:
            await connection.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
            )
