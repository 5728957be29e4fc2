"""One app's (or one worker's) jobs: the store, the known types, and the dispatcher that runs them."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.database import database_url, migrate
from core.events import EventQueue

from .declared import DeclaredSchedules, collect_schedules
from .dispatcher import Dispatcher
from .registry import RegisteredType, collect_job_types
from .schedules import ScheduleStore
from .settings import Settings
from .store import JobStore

MIGRATIONS = Path(__file__).with_name("migrations")

logger = logging.getLogger("plughost.jobs")


@dataclass
class Jobs:
    store: JobStore
    types: dict[str, RegisteredType]
    dispatcher: Dispatcher | None
    """``None`` when this process runs no jobs (``PLUGHOST_JOBS_WORKERS=0``)."""
    artifacts_root: Path
    max_log_bytes: int
    schedules: ScheduleStore
    declared: DeclaredSchedules
    finished: EventQueue
    """``plughost_job_finished`` events, delivered while :meth:`running`."""

    @classmethod
    def for_host(cls, host: Any, workers: int | None = None) -> Jobs:
        settings: Settings = host.plugin_settings("jobs")
        store = JobStore(host.database)
        schedules = ScheduleStore(host.database, store)
        types = collect_job_types(host)
        declared = collect_schedules(host, types)
        size = settings.workers if workers is None else workers
        dispatcher = None
        finished = EventQueue(host, "plughost_job_finished")
        if size > 0:
            url = database_url(host.settings.database_url, host.data_dir)
            dispatcher = Dispatcher(
                store,
                schedules,
                types,
                settings,
                size=size,
                data_dir=host.data_dir,
                artifacts_root=artifacts_root(host),
                database_url=url,
                finished=finished.emit,
            )
        return cls(
            store, types, dispatcher, artifacts_root(host), settings.max_log_bytes, schedules, declared, finished
        )

    def submitted(self) -> None:
        """A job was just queued: wake this process's dispatcher (others poll, or hear NOTIFY)."""
        if self.dispatcher is not None:
            self.dispatcher.wake.set()

    def cancel_requested(self, job_id: str) -> None:
        """Kill ``job_id`` at once if this process runs it (others see the request at their next heartbeat)."""
        if self.dispatcher is not None:
            self.dispatcher.cancel(job_id)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Migrate the jobs tables, upsert the schedules plugins declare, then run the dispatcher (if any)
        and deliver ``plughost_job_finished`` events until the block ends."""
        await migrate(self.store.engine, MIGRATIONS, "jobs")
        for plugin, declared in sorted(self.declared.by_plugin.items()):
            await self.schedules.declare(plugin, declared)
        if self.dispatcher is None:
            yield
            return
        async with self.finished.running():  # exited last: events of the jobs that end at shutdown still go out
            task = asyncio.create_task(self.dispatcher.run(), name="plughost-jobs-dispatcher")
            task.add_done_callback(_report_crash)
            logger.info(
                "jobs: worker %s runs %d at once, types: %s",
                self.dispatcher.owner,
                self.dispatcher.size,
                ", ".join(sorted(self.types)) or "none",
            )
            try:
                yield
            finally:
                await self.dispatcher.shutdown(task)


def artifacts_root(host: Any) -> Path:
    """``PLUGHOST_JOBS_ARTIFACTS_DIR``, or ``<data dir>/jobs/artifacts``."""
    configured: Path | None = host.plugin_settings("jobs").artifacts_dir
    return configured or host.data_dir / "jobs" / "artifacts"


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.critical("jobs: the dispatcher stopped; no more jobs run in this process", exc_info=task.exception())


async def run_worker(host: Any, concurrency: int) -> None:
    """``python -m core jobs worker``: run jobs until SIGINT or SIGTERM, then shut down gracefully."""
    jobs = Jobs.for_host(host, workers=concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with jobs.running():
            await stop.wait()
    finally:
        await host.close()
