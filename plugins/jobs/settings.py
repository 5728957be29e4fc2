"""The jobs plugin's settings (``PLUGHOST_JOBS_<FIELD>``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator


class Settings(BaseModel):
    workers: int = Field(2, ge=0, le=256)
    """Job subprocesses each server process runs at once; 0 makes the server API-only
    (run ``python -m core jobs worker`` elsewhere)."""
    lease_seconds: float = Field(30.0, gt=0)
    """How long a claimed job stays owned without a heartbeat; after that it is recovered."""
    heartbeat_seconds: float = Field(2.0, gt=0)
    """How often a worker renews its leases and looks for cancel requests and lost jobs."""
    poll_seconds: float = Field(1.0, gt=0)
    """Longest idle wait between queue checks (PostgreSQL also wakes workers with NOTIFY)."""
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    """At shutdown, how long running jobs may finish before they are killed and re-queued."""
    max_result_bytes: int = Field(1024 * 1024, ge=1024)
    """Largest JSON result a job may return; a bigger one fails the job."""
    idle_seconds: float = Field(60.0, ge=0)
    """A job worker process with no job for this long exits; the fork server too, once no worker is left.
    Nothing but the server runs while no job does."""
    max_log_bytes: int = Field(1024 * 1024, ge=1024)
    """The last this many bytes of each job's output and log records are kept; earlier ones are dropped, with a note."""
    artifacts_dir: Path | None = None
    """Where job artifacts are stored (shared storage when workers run on several hosts);
    default ``<data dir>/jobs/artifacts``."""
    misfire_grace_seconds: float = Field(60.0, gt=0)
    """A schedule's tick later than this (no worker ran at the time) counts as missed:
    coalesced or skipped per the schedule."""

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> Settings:
        if self.lease_seconds < 3 * self.heartbeat_seconds:
            raise ValueError(
                "lease_seconds must be at least 3 x heartbeat_seconds, or a live job could be taken as lost"
            )
        return self
