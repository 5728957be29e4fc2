"""The fork server: ``python -m plugins.jobs.forkserver CONTROL_FD [module ...]``.

A warm template for job workers. It imports the job types' modules once, then
forks a worker (:mod:`plugins.jobs.child`) per request, so a worker replacing one
killed by a timeout or cancel starts in milliseconds instead of re-importing
everything. It is single-threaded (safe to fork) and is a child subreaper: the
processes of a killed worker that escaped its process group are re-parented here
and killed when that worker is reaped.

Requests on the control socket (``SOCK_SEQPACKET``, one JSON object per message):

- ``{"op": "fork"}`` with two file descriptors attached (the worker's job socket
  and the write end of its log pipe) → ``{"pid": n}``;
- ``{"op": "reap", "pid": n}`` → kills worker ``n``'s process group, waits for it,
  kills every orphan it left → ``{"reaped": n, "killed": count}``.

When the control socket closes (the dispatcher stopped or died), every worker and
everything they started is killed, then the fork server exits at once (no interpreter teardown).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
from typing import Any

from .reaper import become_subreaper, kill_children, kill_group

MAX_MESSAGE = 4096


def fork_worker(control: socket.socket, job_fd: int, log_fd: int) -> int:
    pid = os.fork()
    if pid:
        os.close(job_fd)
        os.close(log_fd)
        return pid
    code = 1
    try:
        os.setsid()
        control.close()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        become_subreaper()
        from .child import serve

        serve(socket.socket(fileno=job_fd))
    except BaseException:
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(code)


def reap(pid: int, workers: set[int]) -> int:
    kill_group(pid)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    workers.discard(pid)
    return kill_children(keep=workers)


def answer(control: socket.socket, message: dict[str, Any]) -> None:
    control.send(json.dumps(message).encode())


def main(control_fd: int, preload: list[str]) -> None:
    control = socket.socket(fileno=control_fd)
    become_subreaper()
    for module in preload:
        importlib.import_module(module)
    importlib.import_module("plugins.jobs.child")
    workers: set[int] = set()
    answer(control, {"ready": True})
    try:
        while True:
            data, fds, _flags, _address = socket.recv_fds(control, MAX_MESSAGE, 2)
            if not data:
                break
            request = json.loads(data)
            if request["op"] == "fork":
                pid = fork_worker(control, *fds)
                workers.add(pid)
                answer(control, {"pid": pid})
            elif request["op"] == "reap":
                answer(control, {"reaped": request["pid"], "killed": reap(request["pid"], workers)})
    finally:
        for pid in list(workers):
            kill_group(pid)
        kill_children()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
    # Every worker is dead and nothing is buffered (stdout is /dev/null): skip the interpreter's teardown
    # of the preloaded modules and their exit handlers, which kept the dispatcher's shutdown waiting.
    os._exit(0)
