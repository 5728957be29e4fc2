"""The :class:`~plugins.jobs.hookspecs.JobsClient` other plugins get through ``plughost_jobs_client``;
the API routes use it too."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import HTTPException

from .hookspecs import JobRefused
from .service import Jobs
from .store import Submission
from .views import job_view, params_or_400, registered_or_400


class Client:
    """Submit, read, cancel and list the current workspace's jobs, as ``/api/jobs`` does."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    async def submit(
        self,
        type: str,
        params: dict[str, Any],
        *,
        timeout_seconds: float | None = None,
        max_attempts: int | None = None,
    ) -> dict[str, Any]:
        try:
            registered = registered_or_400(self.jobs.types, type)
            checked = params_or_400(registered, params)
        except HTTPException as error:
            raise JobRefused(error.detail) from None
        job_type = registered.job_type
        row = await self.jobs.store.submit(
            Submission(
                type=type,
                params=checked,
                timeout_seconds=float(timeout_seconds or job_type.timeout_seconds),
                max_attempts=max_attempts or job_type.retry.max_attempts,
                requeue_lost=job_type.retry.requeue_lost,
            )
        )
        self.jobs.submitted()
        return job_view(row)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        row = await self.jobs.store.get(job_id)
        return None if row is None else job_view(row)

    async def cancel(self, job_id: str) -> tuple[Literal["canceled", "requested"], dict[str, Any]] | None:
        outcome, row = await self.jobs.store.cancel(job_id)
        if row is None:
            return None
        if outcome == "finished":
            raise JobRefused(f"job {job_id} already finished as {row.status}; nothing to cancel")
        if outcome == "requested":
            self.jobs.cancel_requested(job_id)
            return "requested", job_view(row)
        return "canceled", job_view(row)

    async def list(self, *, type: str | None = None, limit: int = 100) -> tuple[list[dict[str, Any]], bool]:
        page = await self.jobs.store.page(type=type, status=None, schedule_id=None, limit=limit, after=None)
        return [job_view(row) for row in page.rows], page.next_cursor is not None
