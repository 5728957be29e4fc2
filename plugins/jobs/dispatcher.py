"""The worker loop: claim due jobs, run each in a subprocess, renew leases, obey cancels, recover lost jobs.

One dispatcher runs inside each API server process (``PLUGHOST_JOBS_WORKERS`` > 0)
and inside each ``python -m core jobs worker``; they share the queue through the
database.

A database outage stops every lease from being renewed, and from being taken over:
nobody can recover a job while the database is away. So a worker whose renewals fail
keeps its jobs running, renews their leases as soon as the database answers, and
records their outcomes (retrying until it can). A dispatcher recovers the jobs of
others (expired leases) only once it has reached the database for a whole lease
period without a failure, which gives every living worker the time to renew first:
a job is taken as lost only when its worker is really gone. A worker that learns its
lease was taken meanwhile kills its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import SQLAlchemyError

from core.unavailable import unavailable

from .artifacts import job_artifacts_dir
from .pool import Outcome, ProcessPool
from .registry import RegisteredType
from .schedules import ScheduleStore
from .settings import Settings
from .store import (
    CANCEL_CHANNEL,
    CANCELED,
    FAILED,
    SUBMITTED_CHANNEL,
    SUCCEEDED,
    TIMEOUT,
    JobStore,
    Submission,
)

logger = logging.getLogger("plughost.jobs")

STATUS_BY_OUTCOME = {"ok": SUCCEEDED, "timeout": TIMEOUT, "canceled": CANCELED, "error": FAILED, "crashed": FAILED}
REPORT_SECONDS = 0.5
"""How often a running job's new output and progress are written to the database."""


@dataclass
class RunningJob:
    row: Row[Any]
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    max_log_bytes: int = 1024 * 1024
    log_end: int = 0
    """Bytes the job (all attempts) has written so far."""
    pending: bytearray = field(default_factory=bytearray)
    """Output not yet stored: the bytes of the log that end at ``log_end`` (at most ``max_log_bytes``)."""
    progress: tuple[float | None, str] | None = None
    """The latest progress not yet stored."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the attempt ended: the reporter stores what is left and stops."""

    def output(self, data: bytes) -> None:
        self.pending += data
        self.log_end += len(data)
        if len(self.pending) > self.max_log_bytes:
            del self.pending[: len(self.pending) - self.max_log_bytes]

    def report_progress(self, fraction: float | None, message: str) -> None:
        self.progress = (fraction, message)

    def take_report(self) -> tuple[tuple[int, bytes] | None, tuple[float | None, str] | None]:
        """The new output (at its offset) and progress to store, forgetting them here."""
        chunk = (self.log_end - len(self.pending), bytes(self.pending)) if self.pending else None
        progress, self.progress = self.progress, None
        self.pending.clear()
        return chunk, progress


class Dispatcher:
    def __init__(
        self,
        store: JobStore,
        schedules: ScheduleStore,
        types: dict[str, RegisteredType],
        settings: Settings,
        *,
        size: int,
        data_dir: Path,
        artifacts_root: Path,
        database_url: str,
        finished: Callable[..., None] = lambda **event: None,
    ) -> None:
        self.finished = finished
        """Told of each job that ended for good, as ``finished(job=...)`` (see ``plughost_job_finished``)."""
        self.store = store
        self.schedules = schedules
        self.types = types
        self.settings = settings
        self.size = size
        self.data_dir = data_dir
        self.artifacts_root = artifacts_root
        self.database_url = database_url
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        modules = {module for t in types.values() for module in t.modules}
        self.pool = ProcessPool(size, modules, settings.max_result_bytes, settings.idle_seconds)
        self.running: dict[str, RunningJob] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        """Set when shutdown begins: claiming, schedules and LISTEN end at their next pause."""
        self.settled = asyncio.Event()
        """Set once no job runs here any more: lease renewal ends too."""
        self.database_failed_at = -math.inf
        """When (monotonic) a heartbeat last failed to reach the database."""

    def cancel(self, job_id: str) -> None:
        """Kill ``job_id`` now if this dispatcher runs it."""
        running = self.running.get(job_id)
        if running is not None:
            running.cancel.set()

    async def run(self) -> None:
        """Work until :meth:`shutdown`, which each loop obeys at its next pause.

        The loops are never cancelled in the middle of a database call unless one outlasts the
        grace period: a cancelled aiosqlite call leaves SQLAlchemy a background close that, cut
        short again, never ends and hangs the event loop's exit.
        """
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self._claim_loop())
            loops.create_task(self._heartbeat_loop())
            loops.create_task(self._schedule_loop())
            if self.store.postgresql:
                loops.create_task(self._listen())

    async def shutdown(self, task: asyncio.Task[None]) -> None:
        """Stop claiming, let running jobs finish for the grace period, then kill and re-queue the rest."""
        self.stopping.set()
        self.wake.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.settings.shutdown_grace_seconds)
        unfinished = list(self.running)
        for job_task in self.tasks:
            job_task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.settled.set()
        ended, _ = await asyncio.wait({task}, timeout=self.settings.shutdown_grace_seconds)
        if not ended:
            logger.warning("shutdown: a database call outlasted the grace period; cutting it short")
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self._release(unfinished)
        if unfinished:
            logger.warning("shutdown: %d running jobs were killed and re-queued", len(unfinished))
        await self.pool.close()

    async def _release(self, job_ids: list[str]) -> None:
        """Give jobs back unfinished; one the database does not take back now is recovered when its lease expires."""
        for job_id in job_ids:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self.store.release(job_id, self.owner)

    async def _claim_loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            free = self.size - len(self.running)
            rows = []
            if free > 0:
                try:
                    rows = await self.store.claim(self.owner, self.types.keys(), free, self.settings.lease_seconds)
                except (SQLAlchemyError, OSError) as error:
                    logger.warning("could not claim jobs, retrying in %g s: %s", self.settings.poll_seconds, error)
            if self.stopping.is_set():  # shutdown began while claiming: give them back unstarted
                await self._release([row.id for row in rows])
                return
            for row in rows:
                self._start(row)
            if free > 0 and len(rows) == free:
                continue  # maybe more are due; claim again as slots free up
            await self._idle(until_due=free > 0 and not rows)

    async def _idle(self, *, until_due: bool) -> None:
        timeout = self.settings.poll_seconds
        if until_due:
            with contextlib.suppress(SQLAlchemyError, OSError):
                due = await self.store.next_due(self.types.keys())
                if due is not None:
                    timeout = min(timeout, max(0.0, due - time.time()))
        await _wait(self.wake, timeout)

    def _start(self, row: Row[Any]) -> None:
        self.running[row.id] = RunningJob(row, max_log_bytes=self.settings.max_log_bytes)
        task = asyncio.create_task(self._run(self.running[row.id]), name=f"plughost-job-{row.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, running: RunningJob) -> None:
        row = running.row
        registered = self.types[row.type]
        message = {
            "id": row.id,
            "type": row.type,
            "function": registered.function_path,
            "parameters": registered.parameters_path,
            "params": json.loads(row.params),
            "workspace": row.workspace,
            "attempt": row.attempt,
            "data_dir": str(self.data_dir),
            "artifacts_dir": str(job_artifacts_dir(self.artifacts_root, row.workspace, row.id)),
            "database_url": self.database_url,
            "max_result_bytes": self.settings.max_result_bytes,
        }
        reporter = None
        try:
            running.log_end = await self.store.log_size(row.id)
            if row.attempt > 1:
                running.output(f"--- attempt {row.attempt} ---\n".encode())
            reporter = asyncio.create_task(self._report_loop(running), name=f"plughost-job-report-{row.id}")
            async with self.pool.lend() as process:
                try:
                    outcome = await process.run(
                        message, row.timeout_seconds, running.cancel, running.report_progress, running.output
                    )
                except (OSError, RuntimeError) as error:  # no worker could be started, or it vanished between jobs
                    outcome = Outcome("crashed", error=str(error))
            running.ended.set()
            await reporter  # stores the last output and progress, without cutting a write short
            await self._record_when_reachable(row, registered, outcome)
        except (SQLAlchemyError, OSError) as error:
            logger.error(
                "job %s: could not record its outcome (the lease will expire and recover it): %s", row.id, error
            )
        finally:
            if reporter is not None and not reporter.done():
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
            del self.running[row.id]
            self.wake.set()

    async def _report_loop(self, running: RunningJob) -> None:
        """Store the job's new output and progress every ``REPORT_SECONDS``, and once more when it ends.

        The end is seen before that last report is taken: what the job sent while an earlier report was
        being written (its final progress, its last output) is stored too."""
        ended = False
        while not ended:
            ended = await _wait(running.ended, REPORT_SECONDS)
            try:
                await self._report(running)
            except (SQLAlchemyError, OSError) as error:
                logger.warning("job %s: could not store its output and progress: %s", running.row.id, error)

    async def _report(self, running: RunningJob) -> None:
        chunk, progress = running.take_report()
        if chunk is not None or progress is not None:
            keep_from = running.log_end - self.settings.max_log_bytes
            await self.store.report(running.row.id, self.owner, chunk=chunk, keep_from=keep_from, progress=progress)

    async def _record_when_reachable(self, row: Row[Any], registered: RegisteredType, outcome: Outcome) -> None:
        """Record the outcome, trying again while the database is unavailable (the lease is renewed meanwhile,
        as the job still counts as running here), until shutdown's grace period is over."""
        while True:
            try:
                await self._record(row, registered, outcome)
                return
            except (SQLAlchemyError, OSError) as error:
                cause = unavailable(error)
                if cause is None or self.settled.is_set():
                    raise
                logger.warning("job %s: could not record its outcome yet (%s)", row.id, cause.message)
            await _wait(self.settled, self.settings.heartbeat_seconds)

    async def _record(self, row: Row[Any], registered: RegisteredType, outcome: Outcome) -> None:
        policy = registered.job_type.retry
        retry_at = None
        attempts_left = row.attempt < row.max_attempts
        if attempts_left and (
            (outcome.kind == "error" and registered.is_transient(outcome.error_classes))
            or (outcome.kind == "crashed" and row.requeue_lost)
        ):
            retry_at = time.time() + policy.backoff(row.attempt)
        error = outcome.error if outcome.kind != "canceled" else "canceled while running"
        if error and retry_at is not None:
            error = f"attempt {row.attempt} failed, retrying: {error}"
        recorded = await self.store.finish(
            row.id, self.owner, STATUS_BY_OUTCOME[outcome.kind], result=outcome.result, error=error, retry_at=retry_at
        )
        if not recorded:
            logger.warning("job %s: its lease was lost before it ended; outcome %s discarded", row.id, outcome.kind)
        elif retry_at is None:
            result = None if outcome.result is None else json.loads(outcome.result)
            job = {"id": row.id, "type": row.type, "workspace": row.workspace, "attempt": row.attempt}
            self.finished(job={**job, "status": STATUS_BY_OUTCOME[outcome.kind], "result": result, "error": error})

    async def _schedule_loop(self) -> None:
        """Fire due schedule ticks (each once across all workers: see :mod:`plugins.jobs.schedules`)."""
        while not self.stopping.is_set():
            wait = self.settings.poll_seconds
            try:
                now = time.time()
                for row in await self.schedules.due(self.types.keys(), now):
                    registered = self.types[row.type]
                    submission = Submission(
                        type=row.type,
                        params=json.loads(row.params),
                        timeout_seconds=registered.job_type.timeout_seconds,
                        max_attempts=registered.job_type.retry.max_attempts,
                        requeue_lost=registered.job_type.retry.requeue_lost,
                        schedule_id=row.id,
                        scheduled_for=row.next_run,
                    )
                    if await self.schedules.fire(row, submission, now, self.settings.misfire_grace_seconds) is not None:
                        self.wake.set()
                due = await self.schedules.next_due(self.types.keys())
                if due is not None:
                    wait = min(wait, max(0.0, due - time.time()))
            except (SQLAlchemyError, OSError) as error:
                logger.warning("could not fire schedules, retrying in %g s: %s", wait, error)
            await _wait(self.stopping, wait)

    async def _heartbeat_loop(self) -> None:
        """Renew the leases of running jobs until none runs here any more after shutdown began."""
        while not await _wait(self.settled, self.settings.heartbeat_seconds):
            try:
                await self._heartbeat()
            except (SQLAlchemyError, OSError) as error:
                self.database_failed_at = time.monotonic()
                cause = unavailable(error)
                logger.warning(
                    "could not renew job leases; the jobs keep running: %s", cause.message if cause else error
                )
            try:
                await self.pool.trim()
            except (OSError, RuntimeError) as error:
                logger.warning("could not stop idle job workers: %s", error)

    async def _heartbeat(self) -> None:
        job_ids = list(self.running)
        held = await self.store.renew(self.owner, job_ids, self.settings.lease_seconds)
        for job_id in job_ids:
            running = self.running.get(job_id)
            if running is not None and (job_id not in held or held[job_id]):
                running.cancel.set()  # lease taken away, or a cancel was asked
        if time.monotonic() - self.database_failed_at < self.settings.lease_seconds:
            return  # just back from an outage: every living worker renews before anyone's job counts as lost
        recovered = await self.store.recover_lost()
        for row in recovered:
            logger.warning("job %s (%s): its worker was lost; now %s", row.id, row.type, row.status)
        if recovered:
            self.wake.set()

    async def _listen(self) -> None:
        """PostgreSQL: wake on NOTIFY for new jobs, kill on cancel notifications; reconnect on failure."""
        import asyncpg

        dsn = self.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stopping.is_set():
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as error:
                logger.warning("jobs: cannot LISTEN (polling meanwhile): %s", error)
                await _wait(self.stopping, self.settings.poll_seconds * 5)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            try:
                await connection.add_listener(SUBMITTED_CHANNEL, lambda *_: self.wake.set())
                await connection.add_listener(CANCEL_CHANNEL, lambda *args: self.cancel(args[-1]))
                await _first_of(lost, self.stopping)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
