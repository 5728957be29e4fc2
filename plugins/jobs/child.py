"""The job subprocess: ``python -m plugins.jobs.child [module ...]``.

Reads one JSON job per line on stdin, runs it, and answers one JSON line on the
original stdout; the job's own prints go to stderr. Runs one job at a time and
is reused for the next, so only a kill (timeout, cancel) costs a new process.
Exits when stdin closes, which is also what happens when the worker that
started it dies, even by ``kill -9``: an orphaned job never runs on.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from core.context import use_workspace

from .hookspecs import JobContext
from .registry import resolve


def run(job: dict[str, Any]) -> dict[str, Any]:
    context = JobContext(
        id=job["id"],
        type=job["type"],
        workspace=job["workspace"],
        attempt=job["attempt"],
        data_dir=Path(job["data_dir"]),
        database_url=job["database_url"],
    )
    try:
        function = resolve(job["function"])
        params = resolve(job["parameters"]).model_validate(job["params"])
        with use_workspace(context.workspace):
            outcome = function(params, context)
            if asyncio.iscoroutine(outcome):
                outcome = asyncio.run(outcome)
        result = json.dumps(outcome, separators=(",", ":"))
    except Exception as error:  # the job's failure is reported, never the child's
        return {
            "ok": False,
            "error": f"{type(error).__name__}: {error}",
            "classes": [f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__],
        }
    if len(result) > job["max_result_bytes"]:
        return {"ok": False, "error": f"the result is {len(result)} bytes of JSON, over the {job['max_result_bytes']}-byte limit", "classes": []}
    return {"ok": True, "result": result}


def read_jobs(source: BinaryIO, jobs: queue.SimpleQueue[dict[str, Any]]) -> None:
    for line in source:
        jobs.put(json.loads(line))
    os._exit(0)  # stdin closed: the worker is gone or done with us; stop even mid-job


def main(preload: list[str]) -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for module in preload:
        importlib.import_module(module)
    jobs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    threading.Thread(target=read_jobs, args=(sys.stdin.buffer, jobs), daemon=True).start()
    replies.write(b'{"ready":true}\n')
    while True:
        replies.write(json.dumps(run(jobs.get())).encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
