"""Files of the OpenAI-compatible Batch API, kept in the data directory per workspace.

A file is ``<data_dir>/gateway-files/<workspace>/<id>.jsonl`` with its description
beside it in ``<id>.json``. Files live on disk rather than in the database because
batch inputs and outputs can be many megabytes and are read and written as streams
of lines; the description is tiny. All functions do blocking I/O: call them through
``anyio.to_thread`` from the event loop.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from core.context import check_workspace

FILE_ID = re.compile(r"^file-[0-9a-f]{32}$")


class FileMissing(LookupError):
    pass


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex}"


def folder(data_dir: Path, workspace: str) -> Path:
    return data_dir / "gateway-files" / check_workspace(workspace)


def content_path(data_dir: Path, workspace: str, file_id: str) -> Path:
    if not FILE_ID.match(file_id):
        raise FileMissing(f"no file {file_id!r}")
    return folder(data_dir, workspace) / f"{file_id}.jsonl"


def write_file(
    data_dir: Path, workspace: str, file_id: str, filename: str, purpose: str, content: bytes
) -> dict[str, Any]:
    """Store ``content`` under ``file_id`` and return its OpenAI file object."""
    path = content_path(data_dir, workspace, file_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return describe(data_dir, workspace, file_id, filename, purpose, len(content))


def describe(data_dir: Path, workspace: str, file_id: str, filename: str, purpose: str, size: int) -> dict[str, Any]:
    """Write the description of an already written file (the job writes its outputs line by line)."""
    meta = {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }
    path = content_path(data_dir, workspace, file_id).with_suffix(".json")
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, path)  # a reader never sees half a description
    return meta


def read_meta(data_dir: Path, workspace: str, file_id: str) -> dict[str, Any]:
    path = content_path(data_dir, workspace, file_id).with_suffix(".json")
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        raise FileMissing(f"no file {file_id!r} in workspace {workspace!r}") from None


def list_files(data_dir: Path, workspace: str, purpose: str | None) -> list[dict[str, Any]]:
    metas = (
        [json.loads(p.read_text()) for p in folder(data_dir, workspace).glob("file-*.json")]
        if folder(data_dir, workspace).is_dir()
        else []
    )
    return sorted(
        (m for m in metas if purpose is None or m["purpose"] == purpose),
        key=lambda m: (m["created_at"], m["id"]),
        reverse=True,
    )


def delete_file(data_dir: Path, workspace: str, file_id: str) -> None:
    read_meta(data_dir, workspace, file_id)
    path = content_path(data_dir, workspace, file_id)
    path.with_suffix(".json").unlink()
    path.unlink(missing_ok=True)
