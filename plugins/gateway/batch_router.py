"""OpenAI Batch API-compatible routes: ``/gateway/v1/files`` and ``/gateway/v1/batches``.

A batch is a ``gateway.batch`` job submitted through the jobs plugin's public HTTP API
(``/api/jobs``), called in-process with the caller's headers so the same workspace
and access rules apply; the batch's id is ``batch_<job id>`` and its status is the job's.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from core.context import current_workspace

from . import batch_files, formats
from .batch import CHAT_URL, BadLine, check_lines
from .openapi import batch_responses

MAX_FILE_BYTES = 100 * 1024 * 1024
JOB_TYPE = "gateway.batch"
WINDOW_SECONDS = {"24h": 24 * 3600}
STATUS = {"PENDING": "validating", "RUNNING": "in_progress", "SUCCEEDED": "completed", "FAILED": "failed", "TIMEOUT": "expired", "CANCELED": "cancelled"}
FORWARDED = {"content-length", "content-type", "transfer-encoding"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(formats.openai_error(message, "invalid_request_error" if status < 500 else "server_error"), status)


def create_batch_router(data_dir: Path, jobs_enabled: bool) -> APIRouter:
    router = APIRouter(prefix="/gateway/v1", tags=["gateway batch"], responses=batch_responses())

    async def jobs_api(request: Request, method: str, path: str, body: Any = None) -> httpx.Response:
        """The jobs plugin's public API, called in-process with the caller's headers."""
        if not jobs_enabled:
            return httpx.Response(503, json={"detail": "batches need the jobs plugin, which is not enabled"})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in FORWARDED}
        transport = httpx.ASGITransport(app=request.app)
        async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as client:
            return await client.request(method, f"/api/jobs{path}", json=body, headers=headers)

    async def file_meta(file_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(batch_files.read_meta, data_dir, current_workspace(), file_id)

    @router.post("/files", summary="Upload a batch input file (JSONL, purpose=batch)")
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
            await anyio.to_thread.run_sync(check_lines, content)
        except BadLine as error:
            return _error(400, f"{filename}: {error}")
        meta = await anyio.to_thread.run_sync(
            batch_files.write_file, data_dir, current_workspace(), batch_files.new_file_id(), filename, "batch", content
        )
        return JSONResponse(meta)

    @router.get("/files", summary="Files of the current workspace, newest first")
    async def list_files(purpose: str | None = None) -> dict[str, Any]:
        files = await anyio.to_thread.run_sync(batch_files.list_files, data_dir, current_workspace(), purpose)
        return {"object": "list", "data": files, "has_more": False}

    @router.get("/files/{file_id}", summary="One file's description")
    async def retrieve_file(file_id: str) -> Response:
        try:
            return JSONResponse(await file_meta(file_id))
        except batch_files.FileMissing as error:
            return _error(404, str(error))

    @router.get("/files/{file_id}/content", summary="A file's content (JSONL)")
    async def file_content(file_id: str) -> Response:
        try:
            await file_meta(file_id)
        except batch_files.FileMissing as error:
            return _error(404, str(error))
        return FileResponse(batch_files.content_path(data_dir, current_workspace(), file_id), media_type="application/jsonl")

    @router.delete("/files/{file_id}", summary="Delete a file")
    async def delete_file(file_id: str) -> Response:
        try:
            await anyio.to_thread.run_sync(batch_files.delete_file, data_dir, current_workspace(), file_id)
        except batch_files.FileMissing as error:
            return _error(404, str(error))
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    @router.post("/batches", summary="Start a batch over an uploaded file (the gateway.batch job)")
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
        answer = await jobs_api(request, "POST", "", {"type": JOB_TYPE, "params": params, "timeout_seconds": WINDOW_SECONDS[window]})
        return _batch_answer(answer)

    @router.get("/batches", summary="Batches of the current workspace, newest first")
    async def list_batches(request: Request, limit: int = 20) -> Response:
        answer = await jobs_api(request, "GET", f"?type={JOB_TYPE}&limit={max(1, min(limit, 100))}")
        if answer.status_code != 200:
            return _error(answer.status_code, answer.text)
        data = [batch_view(job) for job in answer.json()["jobs"]]
        return JSONResponse({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None, "has_more": answer.json()["next_page_token"] is not None})

    @router.get("/batches/{batch_id}", summary="One batch: status, request counts, output and error files")
    async def retrieve_batch(request: Request, batch_id: str) -> Response:
        return _batch_answer(await jobs_api(request, "GET", f"/{_job_id(batch_id)}"))

    @router.post("/batches/{batch_id}/cancel", summary="Cancel a batch")
    async def cancel_batch(request: Request, batch_id: str) -> Response:
        return _batch_answer(await jobs_api(request, "POST", f"/{_job_id(batch_id)}/cancel"))

    return router


def _job_id(batch_id: str) -> str:
    return batch_id.removeprefix("batch_") if batch_id.startswith("batch_") else "not-a-batch"


def _batch_answer(answer: httpx.Response) -> Response:
    if answer.status_code >= 300:
        detail = answer.json().get("detail", answer.text) if answer.headers.get("content-type", "").startswith("application/json") else answer.text
        status = 404 if answer.status_code in (404, 422) else answer.status_code
        return _error(status, re.sub(r"\bjob ([0-9a-f]{32})", r"batch batch_\1", str(detail)))
    job = answer.json()
    if job["type"] != JOB_TYPE:
        return _error(404, "no such batch")
    return JSONResponse(batch_view(job))


def batch_view(job: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI batch object for a ``gateway.batch`` job."""
    result = job["result"] or {}
    status = STATUS[job["status"]]
    if job["cancel_requested"] and status in ("validating", "in_progress"):
        status = "cancelling"
    counts = result.get("request_counts", {"total": 0, "completed": 0, "failed": 0})
    errors = None if job["error"] is None else {"object": "list", "data": [{"code": job["status"].lower(), "message": job["error"], "line": None, "param": None}]}
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
