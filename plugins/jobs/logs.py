"""A job's captured log as the API serves it: whole, or followed live as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from core.context import use_workspace

from .store import FINISHED, JobStore

FOLLOW_POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


def assemble(chunks: list[Any], max_log_bytes: int) -> dict[str, Any]:
    """The stored chunks as one text, with a note in front when earlier output was dropped."""
    size = chunks[-1].offset + chunks[-1].size if chunks else 0
    start = chunks[0].offset if chunks else 0
    text = "".join(chunk.data for chunk in chunks)
    note = (
        f"[{start} earlier bytes dropped: only the last {max_log_bytes} bytes of a job's log are kept]\n"
        if start
        else ""
    )
    return {"log": note + text, "size": size, "dropped_bytes": start}


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def follow(store: JobStore, job_id: str, workspace: str) -> AsyncIterator[bytes]:
    """SSE: ``log`` events (``{"offset", "text", "dropped_bytes"}``) as output is stored, then one
    ``end`` event (``{"status", "error"}``) when the job finished and all its output was sent."""
    cursor = 0
    idle = 0.0
    with use_workspace(workspace):
        while True:
            row = await store.get(job_id)
            chunks = await store.log_chunks(job_id, after=cursor)
            for chunk in chunks:
                dropped = max(0, chunk.offset - cursor)
                yield event("log", {"offset": chunk.offset, "text": chunk.data, "dropped_bytes": dropped})
                cursor = chunk.offset + chunk.size
            if row is None or row.status in FINISHED:
                if row is not None and not chunks:  # output stored just before the end is sent first
                    yield event("end", {"status": row.status, "error": row.error})
                    return
                if row is None:
                    yield event("end", {"status": "DELETED", "error": None})
                    return
                continue
            idle = 0.0 if chunks else idle + FOLLOW_POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
