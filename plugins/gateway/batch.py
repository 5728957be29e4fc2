"""Batch inference: the ``gateway.batch`` job runs a JSONL of OpenAI chat requests through endpoints.

It runs in a jobs subprocess, so it builds its own :class:`Gateway` from the job's
database URL and data directory, and the gateway settings from the environment
(``PLUGHOST_GATEWAY_*``). Each line goes through :meth:`Gateway.complete`, so
fallbacks, SSRF checks and usage records apply as on ``/gateway/v1/chat/completions``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core import Pricing, jsonbody
from core.database import create_engine
from core.settings import CoreSettings, load_plugin_settings

from . import batch_files
from .calls import Call, CallFailed, Gateway
from .crypto import Envelope
from .formats import BadRequest
from .settings import Settings
from .store import GatewayStore
from .tracing import Tracer

CHAT_URL = "/v1/chat/completions"


class BadLine(ValueError):
    pass


class BatchParams(BaseModel):
    input_file_id: str = Field(
        pattern=batch_files.FILE_ID.pattern,
        description="An uploaded JSONL file of chat requests (`POST /gateway/v1/files`, purpose `batch`)",
        json_schema_extra={
            "x-plughost-options": {"url": "/gateway/v1/files", "items": "data", "value": "id", "label": "filename"}
        },
    )
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once")


def check_line(number: int, raw: bytes, seen: set[str]) -> dict[str, Any]:
    """One input line as a dict, or :class:`BadLine` naming the line (1-based) and the problem."""
    try:
        line = jsonbody.loads(raw)
    except jsonbody.JSONTooDeep as error:
        raise BadLine(f"line {number}: nests objects or arrays deeper than {error.max_depth} levels") from None
    except jsonbody.JSONBodyError as error:  # "the body is not valid JSON: ...", "... not UTF-8 text: ..."
        raise BadLine(f"line {number}: {str(error).removeprefix('the body is ')}") from None
    if not isinstance(line, dict):
        raise BadLine(f"line {number}: must be a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise BadLine(f"line {number}: custom_id must be a non-empty string")
    if custom_id in seen:
        raise BadLine(f"line {number}: custom_id {custom_id!r} is used twice")
    seen.add(custom_id)
    if line.get("method") != "POST":
        raise BadLine(f"line {number}: method must be POST")
    if line.get("url") != CHAT_URL:
        raise BadLine(f"line {number}: url must be {CHAT_URL}")
    body = line.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        raise BadLine(f"line {number}: body must be an object whose model names an endpoint")
    if body.get("stream"):
        raise BadLine(f"line {number}: stream is not supported in a batch")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadLine(f"line {number}: body.messages must be a non-empty list of message objects")
    return line


def check_lines(content: bytes) -> int:
    """Validate a whole input file; return its number of requests."""
    seen: set[str] = set()
    count = 0
    for number, raw in enumerate(content.splitlines(), start=1):
        if raw.strip():
            check_line(number, raw, seen)
            count += 1
    if count == 0:
        raise BadLine("the file has no requests")
    return count


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    with path.open("rb") as source:
        for number, raw in enumerate(source, start=1):
            if raw.strip():
                yield check_line(number, raw, seen)


async def answer(gateway: Gateway, line: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """One output line (OpenAI batch format) and whether it succeeded."""
    body = line["body"]
    request_id = f"req_{uuid.uuid4().hex}"
    try:
        answered = json.loads(await gateway.complete(body["model"], Call("openai", {**body, "stream": False})))
    except (CallFailed, BadRequest) as error:
        status = error.status if isinstance(error, CallFailed) else 400
        failure = {
            "message": str(error),
            "type": "upstream_error" if status >= 500 else "invalid_request_error",
            "code": None,
        }
        return {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": line["custom_id"],
            "response": {"status_code": status, "request_id": request_id, "body": {"error": failure}},
            "error": None,
        }, False
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": line["custom_id"],
        "response": {"status_code": 200, "request_id": request_id, "body": answered},
        "error": None,
    }, True


async def run_batch(params: BatchParams, job: Any) -> dict[str, Any]:
    """The ``gateway.batch`` job: answer every line, at most ``concurrency`` at once."""
    settings = Settings.model_validate(load_plugin_settings("gateway", Settings, os.environ))
    engine = create_engine(job.database_url)
    pricing = Pricing(CoreSettings().prices)  # PLUGHOST_PRICES, as the server reads it
    store = GatewayStore(engine, settings.config_cache_seconds, pricing)
    store.envelope = Envelope.load(settings.kek.get_secret_value() if settings.kek else None, job.data_dir)
    # No span exporter in a job process: the batch's own job record is its trace of work.
    tracer = Tracer(None, queue_size=settings.trace_queue_size, capture_content=False, project=settings.trace_project)
    gateway = Gateway(store, settings, tracer)
    writer = asyncio.create_task(store.write_usage())
    try:
        return await _answer_all(gateway, params, job)
    finally:
        store.stop_writing_usage()
        await writer
        await gateway.close()
        await engine.dispose()


async def _answer_all(gateway: Gateway, params: BatchParams, job: Any) -> dict[str, Any]:
    data_dir, workspace = job.data_dir, job.workspace
    source = batch_files.content_path(data_dir, workspace, params.input_file_id)
    if not source.is_file():  # said without the path: where the data dir is is the server's business
        raise batch_files.FileMissing(f"no input file {params.input_file_id!r} in workspace {workspace!r}")
    output_id, error_id = batch_files.new_file_id(), batch_files.new_file_id()
    output_path = batch_files.content_path(data_dir, workspace, output_id)
    error_path = batch_files.content_path(data_dir, workspace, error_id)
    counts = {"total": 0, "completed": 0, "failed": 0}
    slots = asyncio.Semaphore(params.concurrency)
    with output_path.open("wb") as outputs, error_path.open("wb") as errors:

        async def one(line: dict[str, Any]) -> None:
            try:
                result, ok = await answer(gateway, line)
            finally:
                slots.release()
            (outputs if ok else errors).write(json.dumps(result).encode() + b"\n")
            counts["completed" if ok else "failed"] += 1

        async with asyncio.TaskGroup() as group:
            for line in _lines(source):
                await slots.acquire()
                counts["total"] += 1
                group.create_task(one(line))
    batch_files.describe(
        data_dir,
        workspace,
        output_id,
        f"{params.input_file_id}_output.jsonl",
        "batch_output",
        output_path.stat().st_size,
    )
    batch_files.describe(
        data_dir, workspace, error_id, f"{params.input_file_id}_errors.jsonl", "batch_output", error_path.stat().st_size
    )
    return {"output_file_id": output_id, "error_file_id": error_id, "request_counts": counts}
