"""The jobs plugin's public contract: the hooks that contribute job types and schedules, and their types.

Other plugins add job types by implementing :func:`plughost_job_types`, and
schedules by implementing :func:`plughost_job_schedules`, each with
``@hookimpl(optionalhook=True)`` (so they still load where jobs is not
installed), and import only from this module.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel

from core.hookspecs import hookspec

from .artifacts import check_artifact_name

JOB_TYPE_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again.

    An attempt that raises one of ``transient`` (or a subclass) is retried after
    ``backoff_seconds * factor ** (attempt - 1)`` seconds (at most
    ``max_backoff_seconds``), until ``max_attempts`` attempts were made. Other
    errors, timeouts and cancels are final. ``requeue_lost``: an attempt whose
    worker died (its lease expired) is run again, if attempts remain; otherwise
    it fails.
    """

    max_attempts: int = 1
    transient: tuple[type[BaseException], ...] = ()
    backoff_seconds: float = 1.0
    factor: float = 2.0
    max_backoff_seconds: float = 300.0
    requeue_lost: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_seconds < 0 or self.factor < 1 or self.max_backoff_seconds < 0:
            raise ValueError("backoff_seconds and max_backoff_seconds must be >= 0 and factor >= 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class JobContext:
    """What a running job knows about itself; passed to the job function as its second argument.

    The current workspace (:func:`core.context.current_workspace`) is also set to
    ``workspace`` while the function runs. Everything the job prints to stdout or
    stderr, and every log record at INFO or above (any logger; :attr:`logger` is a
    convenient one), is captured into the job's log (``GET /api/jobs/{id}/logs``,
    the last ``PLUGHOST_JOBS_MAX_LOG_BYTES`` kept), including the output of
    programs the job starts.

    The fields after ``database_url`` have defaults, so a test may build a
    context with the first six alone and call a job function directly; then
    :meth:`progress` does nothing and artifacts go under ``data_dir``.
    """

    id: str
    type: str
    workspace: str
    attempt: int
    data_dir: Path
    database_url: str | None
    artifacts_dir: Path | None = None
    """This job's artifact directory; ``None``: ``<data_dir>/jobs/artifacts/<workspace>/<id>``."""
    reporter: Callable[[float | None, str], None] | None = field(default=None, repr=False, compare=False)
    """Set by the worker: where :meth:`progress` goes. Not for job code."""

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report how far the job got: ``fraction`` in [0, 1] (or ``None`` if unknown) and a short message.

        Shown as ``progress`` in ``GET /api/jobs/{id}`` within about a second;
        cheap enough to call per item (updates are coalesced). Thread-safe.
        """
        if fraction is not None and not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"progress fraction must be between 0 and 1, not {fraction!r}")
        if self.reporter is not None:
            self.reporter(None if fraction is None else float(fraction), str(message)[:1000])

    def artifact_path(self, name: str) -> Path:
        """The path to write artifact ``name`` to (its directory exists); download it at
        ``GET /api/jobs/{id}/artifacts/{name}``. ``ValueError`` for an invalid name: 1-128
        letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit."""
        directory = self.artifacts_dir or self.data_dir / "jobs" / "artifacts" / self.workspace / self.id
        directory.mkdir(parents=True, exist_ok=True)
        return directory / check_artifact_name(name)

    def write_artifact(self, name: str, data: bytes | str | BinaryIO) -> Path:
        """Store ``data`` (bytes, text as UTF-8, or a binary file object, copied in chunks) as artifact ``name``;
        returns its path."""
        path = self.artifact_path(name)
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes | bytearray | memoryview):
            path.write_bytes(data)
        else:
            with path.open("wb") as target:
                shutil.copyfileobj(data, target)
        return path

    @property
    def logger(self) -> logging.Logger:
        """A logger named ``plughost.job.<type>``; its INFO-and-above records land in the job's log."""
        return logging.getLogger(f"plughost.job.{self.type}")


@dataclass(frozen=True)
class JobType:
    """A kind of job that can be submitted by name through ``POST /api/jobs``.

    ``function(params, context)`` runs in a worker subprocess, so it must be a
    module-level function (it is imported there by its qualified name); it may be
    ``async``. ``params`` is an instance of ``parameters``, validated on submit;
    the return value must be JSON-serialisable and is stored as the result.
    ``timeout_seconds`` is the default hard limit per attempt: the subprocess is
    killed when it is reached.
    """

    name: str
    function: Callable[[Any, JobContext], Any]
    parameters: type[BaseModel]
    description: str = ""
    timeout_seconds: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not re.match(JOB_TYPE_NAME, self.name):
            raise ValueError(
                f"job type name {self.name!r}: "
                "use 1-64 lowercase letters, digits, '_', '.', '-', starting with a letter"
            )
        if self.timeout_seconds <= 0:
            raise ValueError(f"job type {self.name!r}: timeout_seconds must be positive")
        if not (isinstance(self.parameters, type) and issubclass(self.parameters, BaseModel)):
            raise ValueError(f"job type {self.name!r}: parameters must be a pydantic model class")
        if not callable(self.function) or "<locals>" in getattr(self.function, "__qualname__", "<locals>"):
            raise ValueError(
                f"job type {self.name!r}: the function must be defined at module level (it is imported in a subprocess)"
            )


@hookspec
def plughost_job_types(host: Any) -> JobType | Sequence[JobType] | None:
    """Contribute job types.

    Called once when the jobs plugin builds its registry (at app build and when
    ``python -m core jobs worker`` starts), after settings are validated. Return
    one :class:`JobType`, a list of them, or ``None``. Names are global: two
    plugins contributing the same name stop start-up naming both. A worker only
    claims jobs of types it knows, so API servers and workers may be deployed
    with different plugin sets.

    Example::

        class Resize(BaseModel):
            path: str
            width: int = Field(gt=0)

        def resize(params: Resize, job: JobContext) -> dict:
            ...
            return {"written": out_path}

        @hookimpl(optionalhook=True)
        def plughost_job_types(host):
            return JobType("images.resize", resize, Resize, timeout_seconds=60,
                           retry=RetryPolicy(max_attempts=3, transient=(OSError,)))
    """


CatchUp = Literal["coalesce", "skip"]


@dataclass(frozen=True)
class Schedule:
    """A job submitted on a timetable: a cron expression or a fixed interval, in a time zone.

    ``name`` identifies the schedule within ``workspace``: a plugin that declares
    the same name again (next start-up) updates its type, params and timing, and
    keeps its paused state. ``cron`` is a 5-field expression (``"0 3 * * *"``:
    03:00 every day in ``timezone``; ``@daily`` and friends too), evaluated by
    ``cronsim``. ``interval_seconds`` runs every N seconds from the first start.
    ``catch_up``: when ticks were missed because no worker ran (down for longer
    than ``PLUGHOST_JOBS_MISFIRE_GRACE_SECONDS``), ``"coalesce"`` runs the job
    once for all of them, ``"skip"`` runs nothing until the next tick. Either
    way, each tick runs at most once across every server and worker.
    """

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    interval_seconds: float | None = None
    timezone: str = "UTC"
    catch_up: CatchUp = "coalesce"
    workspace: str = "default"

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,63}$", self.name):
            raise ValueError(f"schedule name {self.name!r}: use 1-64 lowercase letters, digits, '_', '.', '-'")
        check_timing(self.cron, self.interval_seconds, self.timezone)
        if self.catch_up not in ("coalesce", "skip"):
            raise ValueError(f"schedule {self.name!r}: catch_up must be 'coalesce' or 'skip'")


def check_timing(cron: str | None, interval_seconds: float | None, timezone: str) -> None:
    """Raise ``ValueError`` saying what is wrong unless exactly one of ``cron`` and ``interval_seconds`` is valid,
    in a known time zone."""
    if (cron is None) == (interval_seconds is None):
        raise ValueError("give exactly one of cron and interval_seconds")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Paris'") from None
    if interval_seconds is not None and not 1 <= interval_seconds <= 366 * 24 * 3600:
        raise ValueError("interval_seconds must be between 1 and 31622400 (366 days)")
    if cron is not None:
        try:
            next(CronSim(cron, datetime.now(zone)))
        except CronSimError as error:
            raise ValueError(f"invalid cron expression {cron!r}: {error}") from None
        except StopIteration:
            raise ValueError(f"cron expression {cron!r} never fires") from None


@hookspec
def plughost_job_schedules(host: Any) -> Schedule | Sequence[Schedule] | None:
    """Contribute schedules, created or updated when the jobs plugin starts.

    Called once when the jobs plugin builds (at app build and when ``python -m
    core jobs worker`` starts), after :func:`plughost_job_types`; what it returns
    is written when the jobs plugin starts, after its tables are migrated, by
    every server and worker (idempotently). Return one :class:`Schedule`, a
    list, or ``None``. Each is upserted by ``(workspace,
    name)``; a schedule this plugin declared before and no longer returns is
    deleted (so unsetting the setting that asked for it removes it). Its
    ``type`` must be a registered job type and ``params`` valid for it, or
    start-up stops naming the plugin. Schedules created through the API are
    never touched.

    Example (otel, when ``PLUGHOST_OTEL_RETENTION_DAYS`` is set)::

        @hookimpl(optionalhook=True)
        def plughost_job_schedules(host):
            days = host.plugin_settings("otel").retention_days
            if days is None:
                return None
            return Schedule("otel.retention", "otel.retention", {"days": days}, cron="17 3 * * *")
    """


@hookspec
def plughost_job_finished(job: dict[str, Any]) -> None:
    """React to a job that a worker ran to its end, without polling.

    Called once per job that reaches a final status in a worker (``SUCCEEDED``,
    ``FAILED``, ``TIMEOUT``, ``CANCELED`` while running), after it is recorded, in the
    process whose worker ran it (the server, or ``python -m core jobs worker``). An
    attempt that is retried is not final; a job canceled before it started never ran
    and is not reported. ``job`` holds ``id``, ``type``, ``workspace``, ``status``,
    ``attempt``, ``result`` (as the job returned it) and ``error``. Never on the
    worker's path: events wait in a bounded queue (dropped, and counted, when it is
    full) and are delivered one at a time; ``async def`` implementations are awaited,
    plain ones run in a thread, each for at most 10 s, and one that raises is logged
    with its plugin's name without affecting the others. Return nothing.

    Example::

        @hookimpl(optionalhook=True)
        async def plughost_job_finished(job):
            if job["status"] == "FAILED":
                await notify(f"job {job['type']} failed: {job['error']}")
    """


class JobRefused(ValueError):
    """A :class:`JobsClient` call the jobs API would answer 400: an unknown type, invalid
    parameters, or a cancel of a finished job. ``detail`` is what the API's body would say."""

    def __init__(self, detail: str | dict[str, Any]) -> None:
        super().__init__(detail if isinstance(detail, str) else detail.get("message", str(detail)))
        self.detail = detail


class JobsClient(Protocol):
    """Other plugins' way to submit and follow jobs, in the current workspace (``core.context``),
    as ``/api/jobs`` does for the caller; obtained through :func:`plughost_jobs_client`.

    Jobs are answered as ``GET /api/jobs/{id}`` answers them (plain dicts).
    """

    async def submit(
        self,
        type: str,
        params: dict[str, Any],
        *,
        timeout_seconds: float | None = None,
        max_attempts: int | None = None,
    ) -> dict[str, Any]:
        """Queue a job and return it PENDING; :class:`JobRefused` for an unknown type or invalid params."""
        ...

    async def get(self, job_id: str) -> dict[str, Any] | None:
        """The job, or ``None`` when the current workspace has no such job."""
        ...

    async def cancel(self, job_id: str) -> tuple[Literal["canceled", "requested"], dict[str, Any]] | None:
        """Cancel: ``"canceled"`` if it had not started, ``"requested"`` if running (killed within a
        heartbeat); ``None`` when there is no such job; :class:`JobRefused` if it already finished."""
        ...

    async def list(self, *, type: str | None = None, limit: int = 100) -> tuple[list[dict[str, Any]], bool]:
        """The newest ``limit`` jobs (of ``type``, if given), newest first, and whether there are more."""
        ...


@hookspec(firstresult=True)
def plughost_jobs_client(host: Any) -> JobsClient | None:
    """Give the jobs plugin's :class:`JobsClient` for this app, acting in the current workspace.

    Implemented by the jobs plugin only, which returns its client; ``None`` means no jobs
    plugin answered. Call it when a request needs it (or when building your routers):
    ``hook = getattr(host.plugins.manager.hook, "plughost_jobs_client", None)`` is ``None``
    when the jobs plugin is not enabled (its hooks are not registered then), so
    a plugin that uses it still loads without jobs.
    """
