"""Killing every process a job started, including those that left its process group.

A job runs in a worker process that leads its own session and process group, so
one ``killpg`` reaches everything the job started that stayed in the group. A
program that daemonizes (double fork + ``setsid``) leaves the group; on Linux
the worker and the fork server are *child subreapers*
(``prctl(PR_SET_CHILD_SUBREAPER)``), so such an orphan is re-parented to them
instead of to init, and :func:`kill_children` finds and kills it. Elsewhere
only the process group is guaranteed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Collection
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def children(pid: int | None = None) -> set[int]:
    """The direct children of ``pid`` (this process by default): a scan of ``/proc/*/stat``
    (``/proc/<pid>/task/*/children`` is not compiled into every kernel)."""
    parent = os.getpid() if pid is None else pid
    found: set[int] = set()
    if not os.path.isdir("/proc"):
        return found  # not Linux: only process groups are killed
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(b")") + 2 :].split()  # the name may hold spaces and parentheses
        if int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def kill_children(keep: Collection[int] = ()) -> int:
    """Kill (SIGKILL) and reap every child of this process except ``keep``, with their process
    groups, until none is left: orphans they leave come back to us as a subreaper and are
    killed in the next round. Returns how many processes were killed."""
    if not keep and not has_children():
        return 0  # the common case, without scanning /proc
    own_group = os.getpgrp()
    killed = 0
    while True:
        strays = children() - set(keep)
        if not strays:
            return killed
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != own_group and group not in keep:
                    os.killpg(group, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in strays:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            killed += 1


def has_children() -> bool:
    """Whether this process has any child, running or not yet reaped (reaps one that ended)."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def kill_group(leader: int) -> None:
    """SIGKILL every process in the process group led by ``leader``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
