"""Where a job's artifacts (result files) live, and which names are allowed.

Layout: ``<root>/<workspace>/<job id>/<name>``, with ``root`` the setting
``PLUGHOST_JOBS_ARTIFACTS_DIR`` or ``<data dir>/jobs/artifacts``. A name is one
path component: no separators, no traversal, nothing hidden.
"""

from __future__ import annotations

import mimetypes
import re
import shutil
from pathlib import Path
from typing import Any

ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MEDIA_TYPES = {".jsonl": "application/jsonl", ".ndjson": "application/x-ndjson", ".log": "text/plain"}
"""Types the standard table does not know, by suffix."""


def media_type(name: str) -> str:
    """The artifact's media type from its name (``application/octet-stream`` when unknown)."""
    suffix = Path(name).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def check_artifact_name(name: str) -> str:
    """Return ``name`` if it is a valid artifact name; raise ``ValueError`` saying why not."""
    if not isinstance(name, str) or not ARTIFACT_NAME.match(name):
        raise ValueError(
            f"invalid artifact name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', no '..', no hidden names)"
        )
    return name


def job_artifacts_dir(root: Path, workspace: str, job_id: str) -> Path:
    return root / workspace / job_id


def list_artifacts(directory: Path) -> list[dict[str, Any]]:
    """Name, size, media type and modification time of each artifact, by name (blocking: call it in a thread)."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and ARTIFACT_NAME.match(path.name):
            stat = path.stat()
            found.append(
                {"name": path.name, "size": stat.st_size, "type": media_type(path.name), "modified": stat.st_mtime}
            )
    return found


def delete_artifacts(directory: Path) -> None:
    """Remove a job's artifacts (blocking: call it in a thread)."""
    shutil.rmtree(directory, ignore_errors=True)
