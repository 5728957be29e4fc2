"""The jobs API under ``/api/jobs``: submit, read, list, cancel, delete, logs, artifacts, and the registered types."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import Row

from core import EventStreamResponse, jsonbody
from core.context import current_workspace

from . import logs
from .artifacts import (
    check_artifact_name,
    delete_artifacts,
    job_artifacts_dir,
    list_artifacts,
    media_type,
)
from .client import Client
from .hookspecs import JobRefused
from .schedule_router import create_schedule_router
from .service import Jobs
from .store import STATES
from .views import iso, job_view

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex digits")]
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600


class SubmitRequest(BaseModel):
    type: str = Field(description="A registered job type (see GET /api/jobs/types)")
    params: dict[str, Any] = Field(default_factory=dict, description="Validated against the type's parameter schema")
    timeout_seconds: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT_SECONDS, description="Per attempt; the type's default when absent"
    )
    max_attempts: int | None = Field(None, ge=1, le=100, description="The type's retry policy when absent")


def create_router(jobs: Jobs) -> APIRouter:
    store, types, client = jobs.store, jobs.types, Client(jobs)
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])

    @router.get("/types", summary="The job types that can be submitted")
    async def list_types() -> dict[str, Any]:
        return {"types": [types[name].describe() for name in sorted(types)]}

    router.include_router(create_schedule_router(jobs))  # before /{job_id}, which would take "schedules" as an id

    @router.post("", status_code=202, summary="Submit a job; answers at once with the PENDING job")
    async def submit(body: SubmitRequest, response: Response) -> dict[str, Any]:
        try:
            job = await client.submit(
                body.type, body.params, timeout_seconds=body.timeout_seconds, max_attempts=body.max_attempts
            )
        except JobRefused as error:
            raise HTTPException(400, error.detail) from None
        response.headers["Location"] = f"/api/jobs/{job['id']}"
        return job

    @router.get("", summary="Jobs of the current workspace, newest first")
    async def list_jobs(
        type: str | None = None,
        status: Literal[STATES] | None = None,  # type: ignore[valid-type]
        schedule_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        page = await store.page(
            type=type, status=status, schedule_id=schedule_id, limit=limit, after=_cursor(page_token)
        )
        token = (
            None
            if page.next_cursor is None
            else base64.urlsafe_b64encode(json.dumps(page.next_cursor).encode()).decode()
        )
        return {"jobs": [job_view(row) for row in page.rows], "next_page_token": token}

    @router.get("/{job_id}", summary="One job: state, attempts, result or error")
    async def get_job(job_id: JobId) -> dict[str, Any]:
        row = await store.get(job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id} in workspace {current_workspace()!r}")
        return job_view(row)

    @router.post(
        "/{job_id}/cancel",
        summary="Cancel a job",
        description="200 with the CANCELED job if it had not started; 202 if it is running (its subprocess is "
        "killed within a heartbeat, then it is CANCELED); 409 if it already finished.",
        responses={202: {"description": "Running: cancel requested"}, 409: {"description": "Already finished"}},
    )
    async def cancel(job_id: JobId, response: Response) -> dict[str, Any]:
        try:
            canceled = await client.cancel(job_id)
        except JobRefused as error:
            raise HTTPException(409, error.detail) from None
        if canceled is None:
            raise HTTPException(404, f"no job {job_id} in workspace {current_workspace()!r}")
        outcome, job = canceled
        if outcome == "requested":
            response.status_code = 202
        return job

    async def existing(job_id: str) -> Row[Any]:
        row = await store.get(job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id} in workspace {current_workspace()!r}")
        return row

    @router.delete(
        "/{job_id}",
        status_code=204,
        summary="Delete a finished job with its logs and artifacts",
        responses={409: {"description": "Still pending or running: cancel it first"}},
    )
    async def delete_job(job_id: JobId) -> Response:
        outcome, row = await store.delete_finished(job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id} in workspace {current_workspace()!r}")
        if outcome == "unfinished":
            raise HTTPException(
                409, f"job {job_id} is {row.status}; cancel it and wait until it ends before deleting it"
            )
        await anyio.to_thread.run_sync(delete_artifacts, job_artifacts_dir(jobs.artifacts_root, row.workspace, row.id))
        return Response(status_code=204)

    @router.get(
        "/{job_id}/logs",
        summary="A job's output and log records (the last PLUGHOST_JOBS_MAX_LOG_BYTES)",
        description="JSON by default. With `?follow=1` or `Accept: text/event-stream`: server-sent events, "
        "`log` events with each new piece of output, then an `end` event with the final status.",
    )
    async def get_logs(job_id: JobId, request: Request, follow: bool = False) -> Any:
        row = await existing(job_id)
        if follow or "text/event-stream" in request.headers.get("accept", ""):
            return EventStreamResponse(
                logs.follow(store, job_id, row.workspace),
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return {
            "job_id": job_id,
            "status": row.status,
            **logs.assemble(await store.log_chunks(job_id), jobs.max_log_bytes),
        }

    @router.get("/{job_id}/artifacts", summary="The files a job wrote with context.write_artifact / artifact_path")
    async def get_artifacts(job_id: JobId) -> dict[str, Any]:
        row = await existing(job_id)
        directory = job_artifacts_dir(jobs.artifacts_root, row.workspace, row.id)
        found = await anyio.to_thread.run_sync(list_artifacts, directory)
        return {
            "artifacts": [
                {**item, "modified": iso(item["modified"]), "url": f"/api/jobs/{job_id}/artifacts/{item['name']}"}
                for item in found
            ]
        }

    @router.get(
        "/{job_id}/artifacts/{name:path}",
        summary="Download one artifact",
        responses={400: {"description": "Invalid artifact name"}, 404: {"description": "No such job or artifact"}},
    )
    async def get_artifact(job_id: JobId, name: str) -> FileResponse:
        try:
            check_artifact_name(name)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        row = await existing(job_id)
        path = job_artifacts_dir(jobs.artifacts_root, row.workspace, row.id) / name
        if not await anyio.to_thread.run_sync(path.is_file):
            raise HTTPException(404, f"job {job_id} has no artifact {name!r}")
        return FileResponse(path, filename=name, media_type=media_type(name))

    return router


def _cursor(token: str | None) -> tuple[float, str] | None:
    if token is None:
        return None
    try:
        created_at, job_id = jsonbody.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created_at), str(job_id)
    except (ValueError, TypeError, binascii.Error):
        raise HTTPException(
            400, "invalid page_token: pass the next_page_token of the previous page unchanged"
        ) from None
