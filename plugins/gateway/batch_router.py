"""OpenAI Batch API-compatible routes: ``/gateway/v1/files`` and ``/gateway/v1/batches``.

A batch is a ``gateway.batch`` job submitted through the jobs plugin's public
``JobsClient`` (its ``plughost_jobs_client`` hook), in the caller's workspace; the
batch's id is ``batch_<job id>`` and its status is the job's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from core import run_bulk
from core.context import current_workspace

from . import batch_files, formats
from .batch import CHAT_URL, BadLine, check_lines
from .openapi import batch_responses

MAX_FILE_BYTES = 100 * 1024 * 1024
JOB_TYPE = "gateway.batch"
WINDOW_SECONDS = {"24h": 24 * 3600}
STATUS = {
    "PENDING": "validating",
    "RUNNING": "in_progress",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "TIMEOUT": "expired",
    "CANCELED": "cancelled",
}
JOB_ID = re.compile(r"^batch_([0-9a-f]{32})$")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        formats.openai_error(message, "invalid_request_error" if status < 500 else "server_error"), status
    )


def create_batch_router(data_dir: Path, jobs_client: Callable[[], Any]) -> APIRouter:
    """``jobs_client()``: the jobs plugin's ``JobsClient``, or ``None`` when the jobs plugin is not enabled."""
    router = APIRouter(prefix="/gateway/v1", tags=["gateway batch"])

    def jobs_or_503() -> Any:
        client = jobs_client()
        if client is None:
            raise BatchError(503, "batches need the jobs plugin, which is not enabled")
        return client

    async def file_meta(file_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(batch_files.read_meta, data_dir, current_workspace(), file_id)

    @router.post(
        "/files", summary="Upload a batch input file (JSONL, purpose=batch)", responses=batch_responses(400, 413)
    )
    async def create_file(request: Request) -> Response:
        async with request.form(max_files=1, max_fields=4, max_part_size=MAX_FILE_BYTES) as form:
            upload, purpose = form.get("file"), form.get("purpose")
            if purpose != "batch":
                return _error(400, "purpose must be 'batch'")
            if not isinstance(upload, UploadFile):
                return _error(400, "file: a file part is required")
            content = await upload.read(MAX_FILE_BYTES + 1)
            filename = upload.filename or "input.jsonl"
        if len(content) > MAX_FILE_BYTES:
            return _error(413, f"the file is over the {MAX_FILE_BYTES}-byte limit")
        try:
            await run_bulk(check_lines, content)
        except BadLine as error:
            return _error(400, f"{filename}: {error}")
        meta = await anyio.to_thread.run_sync(
            batch_files.write_file, data_dir, current_workspace(), batch_files.new_file_id(), filename, "batch", content
        )
        return JSONResponse(meta)

    @router.get("/files", summary="Files of the current workspace, newest first", responses=batch_responses(400))
    async def list_files(purpose: str | None = None) -> dict[str, Any]:
        files = await anyio.to_thread.run_sync(batch_files.list_files, data_dir, current_workspace(), purpose)
        return {"object": "list", "data": files, "has_more": False}

    @router.get("/files/{file_id}", summary="One file's description", responses=batch_responses(400, 404))
    async def retrieve_file(file_id: str) -> Response:
        try:
            return JSONResponse(await file_meta(file_id))
        except batch_files.FileMissing as error:
            return _error(404, str(error))

    @router.get("/files/{file_id}/content", summary="A file's content (JSONL)", responses=batch_responses(400, 404))
    async def file_content(file_id: str) -> Response:
        try:
            await file_meta(file_id)
        except batch_files.FileMissing as error:
            return _error(404, str(error))
        return FileResponse(
            batch_files.content_path(data_dir, current_workspace(), file_id), media_type="application/jsonl"
        )

    @router.delete("/files/{file_id}", summary="Delete a file", responses=batch_responses(400, 404))
    async def delete_file(file_id: str) -> Response:
        try:
            await anyio.to_thread.run_sync(batch_files.delete_file, data_dir, current_workspace(), file_id)
        except batch_files.FileMissing as error:
            return _error(404, str(error))
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    @router.post(
        "/batches",
        summary="Start a batch over an uploaded file (the gateway.batch job)",
        responses=batch_responses(400, 503),
    )
    @batch_errors
    async def create_batch(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError as error:
            return _error(400, f"the body is not valid JSON: {error}")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        if body.get("endpoint") != CHAT_URL:
            return _error(400, f"endpoint must be {CHAT_URL}")
        window = body.get("completion_window")
        if window not in WINDOW_SECONDS:
            return _error(400, f"completion_window must be one of {', '.join(WINDOW_SECONDS)}")
        input_file_id = body.get("input_file_id")
        try:
            meta = await file_meta(str(input_file_id))
        except batch_files.FileMissing as error:
            return _error(400, f"input_file_id: {error}")
        if meta["purpose"] != "batch":
            return _error(400, f"input_file_id: file {input_file_id} has purpose {meta['purpose']!r}, not 'batch'")
        params = {"input_file_id": input_file_id, "concurrency": body.get("concurrency", 8)}
        try:
            job = await jobs_or_503().submit(JOB_TYPE, params, timeout_seconds=WINDOW_SECONDS[window])
        except ValueError as error:  # the jobs plugin's JobRefused: invalid params
            return _error(400, str(error))
        return JSONResponse(batch_view(job))

    @router.get(
        "/batches", summary="Batches of the current workspace, newest first", responses=batch_responses(400, 503)
    )
    @batch_errors
    async def list_batches(limit: int = 20) -> Response:
        jobs, more = await jobs_or_503().list(type=JOB_TYPE, limit=max(1, min(limit, 100)))
        data = [batch_view(job) for job in jobs]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": more,
            }
        )

    @router.get(
        "/batches/{batch_id}",
        summary="One batch: status, request counts, output and error files",
        responses=batch_responses(400, 404, 503),
    )
    @batch_errors
    async def retrieve_batch(batch_id: str) -> Response:
        job = await _job(jobs_or_503().get, batch_id)
        return JSONResponse(batch_view(job))

    @router.post("/batches/{batch_id}/cancel", summary="Cancel a batch", responses=batch_responses(400, 404, 503))
    @batch_errors
    async def cancel_batch(batch_id: str) -> Response:
        client = jobs_or_503()
        await _job(client.get, batch_id)  # a batch of this workspace, not another job type
        try:
            canceled = await client.cancel(JOB_ID.match(batch_id).group(1))  # type: ignore[union-attr]
        except ValueError as error:  # already finished
            return _error(400, re.sub(r"\bjob ([0-9a-f]{32})", r"batch batch_\1", str(error)))
        if canceled is None:
            return _error(404, f"no batch {batch_id}")
        return JSONResponse(batch_view(canceled[1]))

    return router


class BatchError(Exception):
    """Answered as an OpenAI error with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def batch_errors(route: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """``BatchError`` raised in ``route`` answered as an OpenAI error."""

    @functools.wraps(route)
    async def answered(*args: Any, **kwargs: Any) -> Response:
        try:
            return await route(*args, **kwargs)
        except BatchError as error:
            return _error(error.status, str(error))

    return answered


async def _job(get: Callable[[str], Any], batch_id: str) -> dict[str, Any]:
    """The ``gateway.batch`` job behind ``batch_id`` in the current workspace; ``BatchError(404)`` otherwise."""
    matched = JOB_ID.match(batch_id)
    job = None if matched is None else await get(matched.group(1))
    if job is None or job["type"] != JOB_TYPE:
        raise BatchError(404, f"no batch {batch_id}")
    return job  # type: ignore[no-any-return]


def batch_view(job: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI batch object for a ``gateway.batch`` job."""
    result = job["result"] or {}
    status = STATUS[job["status"]]
    if job["cancel_requested"] and status in ("validating", "in_progress"):
        status = "cancelling"
    counts = result.get("request_counts", {"total": 0, "completed": 0, "failed": 0})
    errors = (
        None
        if job["error"] is None
        else {
            "object": "list",
            "data": [{"code": job["status"].lower(), "message": job["error"], "line": None, "param": None}],
        }
    )
    return {
        "id": f"batch_{job['id']}",
        "object": "batch",
        "endpoint": CHAT_URL,
        "errors": errors,
        "input_file_id": job["params"]["input_file_id"],
        "completion_window": "24h",
        "status": status,
        "output_file_id": result.get("output_file_id"),
        "error_file_id": result.get("error_file_id"),
        "created_at": _epoch(job["created_at"]),
        "in_progress_at": _epoch(job["started_at"]),
        "completed_at": _epoch(job["finished_at"]) if status == "completed" else None,
        "failed_at": _epoch(job["finished_at"]) if status == "failed" else None,
        "cancelled_at": _epoch(job["finished_at"]) if status == "cancelled" else None,
        "request_counts": counts,
        "metadata": None,
    }


def _epoch(iso: str | None) -> int | None:
    return None if iso is None else int(datetime.fromisoformat(iso).timestamp())
