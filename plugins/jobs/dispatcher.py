"""The worker loop: claim due jobs, run each in a subprocess, renew leases, obey cancels, recover lost jobs.

One dispatcher runs inside each API server process (``PLUGHOST_JOBS_WORKERS`` > 0)
and inside each ``python -m core jobs worker``; they share the queue through the
database. A dispatcher that cannot renew a lease kills that job itself before
the lease can expire, so a job never runs in two places at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import SQLAlchemyError

from .pool import Outcome, ProcessPool
from .registry import RegisteredType
from .settings import Settings
from .store import CANCEL_CHANNEL, CANCELED, FAILED, SUBMITTED_CHANNEL, SUCCEEDED, TIMEOUT, JobStore

logger = logging.getLogger("plughost.jobs")

STATUS_BY_OUTCOME = {"ok": SUCCEEDED, "timeout": TIMEOUT, "canceled": CANCELED, "error": FAILED, "crashed": FAILED}


@dataclass
class RunningJob:
    row: Row[Any]
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    renewed: float = field(default_factory=time.monotonic)


class Dispatcher:
    def __init__(
        self,
        store: JobStore,
        types: dict[str, RegisteredType],
        settings: Settings,
        *,
        size: int,
        data_dir: Path,
        database_url: str,
    ) -> None:
        self.store = store
        self.types = types
        self.settings = settings
        self.size = size
        self.data_dir = data_dir
        self.database_url = database_url
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pool = ProcessPool(size, {module for t in types.values() for module in t.modules}, settings.max_result_bytes)
        self.running: dict[str, RunningJob] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.stopping = False

    def cancel(self, job_id: str) -> None:
        """Kill ``job_id`` now if this dispatcher runs it."""
        running = self.running.get(job_id)
        if running is not None:
            running.cancel.set()

    async def run(self) -> None:
        """Work until :meth:`shutdown`."""
        await self.pool.start()
        loops = [self._claim_loop(), self._heartbeat_loop()]
        if self.store.postgresql:
            loops.append(self._listen())
        await asyncio.gather(*loops)

    async def shutdown(self, task: asyncio.Task[None]) -> None:
        """Stop claiming, let running jobs finish for the grace period, then kill and re-queue the rest."""
        self.stopping = True
        self.wake.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.settings.shutdown_grace_seconds)
        unfinished = list(self.running)
        for job_task in self.tasks:
            job_task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for job_id in unfinished:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self.store.release(job_id, self.owner)
        if unfinished:
            logger.warning("shutdown: %d running jobs were killed and re-queued", len(unfinished))
        await self.pool.close()

    async def _claim_loop(self) -> None:
        while not self.stopping:
            self.wake.clear()
            free = self.size - len(self.running)
            rows = []
            if free > 0:
                try:
                    rows = await self.store.claim(self.owner, self.types.keys(), free, self.settings.lease_seconds)
                except (SQLAlchemyError, OSError) as error:
                    logger.warning("could not claim jobs, retrying in %g s: %s", self.settings.poll_seconds, error)
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)

    def _start(self, row: Row[Any]) -> None:
        self.running[row.id] = RunningJob(row)
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
            "database_url": self.database_url,
            "max_result_bytes": self.settings.max_result_bytes,
        }
        try:
            async with self.pool.lend() as process:
                try:
                    outcome = await process.run(message, row.timeout_seconds, running.cancel)
                except OSError as error:  # the subprocess could not start or vanished between jobs
                    outcome = Outcome("crashed", error=str(error))
            await self._record(row, registered, outcome)
        except (SQLAlchemyError, OSError) as error:
            logger.error("job %s: could not record its outcome (the lease will expire and recover it): %s", row.id, error)
        finally:
            del self.running[row.id]
            self.wake.set()

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

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self._heartbeat()
            except (SQLAlchemyError, OSError) as error:
                logger.warning("could not renew job leases: %s", error)
                self._kill_expiring()

    async def _heartbeat(self) -> None:
        job_ids = list(self.running)
        held = await self.store.renew(self.owner, job_ids, self.settings.lease_seconds)
        now = time.monotonic()
        for job_id in job_ids:
            running = self.running.get(job_id)
            if running is None:
                continue  # ended meanwhile
            if job_id not in held or held[job_id]:
                running.cancel.set()  # lease taken away, or a cancel was asked
            else:
                running.renewed = now
        recovered = await self.store.recover_lost()
        for row in recovered:
            logger.warning("job %s (%s): its worker was lost; now %s", row.id, row.type, row.status)
        if recovered:
            self.wake.set()

    def _kill_expiring(self) -> None:
        """Fence: a job whose lease may lapse before the next heartbeat is killed, since another worker may take it."""
        deadline = time.monotonic() - (self.settings.lease_seconds - 2 * self.settings.heartbeat_seconds)
        for job_id, running in self.running.items():
            if running.renewed < deadline:
                logger.error("job %s: lease could not be renewed; killing it before it expires", job_id)
                running.cancel.set()

    async def _listen(self) -> None:
        """PostgreSQL: wake on NOTIFY for new jobs, kill on cancel notifications; reconnect on failure."""
        import asyncpg

        dsn = self.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as error:
                logger.warning("jobs: cannot LISTEN (polling meanwhile): %s", error)
                await asyncio.sleep(self.settings.poll_seconds * 5)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            try:
                await connection.add_listener(SUBMITTED_CHANNEL, lambda *_: self.wake.set())
                await connection.add_listener(CANCEL_CHANNEL, lambda *args: self.cancel(args[-1]))
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
