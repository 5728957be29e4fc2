"""The job worker: a process forked by :mod:`plugins.jobs.forkserver` that runs one job at a time.

It leads its own session and process group, and is a child subreaper (Linux), so
that everything a job starts can be killed (see :mod:`plugins.jobs.reaper`).
Protocol on its socket, one JSON object per line: the dispatcher sends a job; the
worker answers any number of ``{"progress": fraction, "message": text}`` lines and
then one outcome line (``{"ok": true, "result": json}`` or ``{"ok": false, ...}``).
Its stdout and stderr (fds 1 and 2) are the dispatcher's log pipe: prints, log
records and the output of programs a job starts all land in the job's log.
When a job ends, every process it left behind is killed before the outcome is
sent. The worker exits when its socket closes (the dispatcher closed it after an
idle time, or died, even by ``kill -9``), killing whatever its job still runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import socket
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from core.context import use_workspace

from .hookspecs import JobContext
from .reaper import kill_children
from .registry import resolve

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Replies:
    """The worker's side of the socket: whole lines, from any thread of the job."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self.lock:
            self.sock.sendall(line)


def run(job: dict[str, Any], replies: Replies) -> dict[str, Any]:
    context = JobContext(
        id=job["id"],
        type=job["type"],
        workspace=job["workspace"],
        attempt=job["attempt"],
        data_dir=Path(job["data_dir"]),
        database_url=job["database_url"],
        artifacts_dir=Path(job["artifacts_dir"]),
        reporter=lambda fraction, message: replies.send({"progress": fraction, "message": message}),
    )
    try:
        function = resolve(job["function"])
        params = resolve(job["parameters"]).model_validate(job["params"])
        with use_workspace(context.workspace):
            outcome = function(params, context)
            if asyncio.iscoroutine(outcome):
                outcome = asyncio.run(outcome)
        result = json.dumps(outcome, separators=(",", ":"))
    except Exception as error:  # the job's failure is reported, never the worker's
        logging.getLogger("plughost.job").exception("job %s failed", context.id)
        return {
            "ok": False,
            "error": without_server_paths(f"{type(error).__name__}: {error}", job),
            "classes": [f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__],
        }
    if len(result) > job["max_result_bytes"]:
        return {
            "ok": False,
            "error": f"the result is {len(result)} bytes of JSON, over the {job['max_result_bytes']}-byte limit",
            "classes": [],
        }
    return {"ok": True, "result": result}


def without_server_paths(message: str, job: dict[str, Any]) -> str:
    """``message`` with the server's own directories named, not spelled out: an error is shown to
    API clients, and where the server keeps its data is none of theirs."""
    for place, name in ((job["artifacts_dir"], "<job artifacts>"), (job["data_dir"], "<data dir>")):
        for spelling in {str(Path(place).resolve()), str(place)}:
            message = message.replace(spelling, name)
    return message


def read_jobs(source: BinaryIO, jobs: queue.SimpleQueue[dict[str, Any]]) -> None:
    for line in source:
        jobs.put(json.loads(line))
    kill_children()  # the socket closed: the dispatcher is gone or done with us; stop even mid-job
    os._exit(0)


def serve(sock: socket.socket) -> None:
    """Run jobs from ``sock`` until it closes (never returns)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)
    replies = Replies(sock)
    jobs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    threading.Thread(target=read_jobs, args=(sock.makefile("rb"), jobs), daemon=True).start()
    replies.send({"ready": True})
    while True:
        outcome = run(jobs.get(), replies)
        sys.stdout.flush()
        sys.stderr.flush()
        kill_children()  # nothing a job started outlives it
        replies.send(outcome)
