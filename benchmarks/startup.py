"""Start-up benchmark: cold start to ``/health`` and idle memory of the whole process tree, beside the peer.

    python -m benchmarks.startup [--quick] [--write]

Each server starts on a store that is already migrated (its first start, not timed, migrates it),
several times, the servers taking turns so that all see the same load on the machine:

- wall seconds from the process's start until ``/health`` first answers 200, and the CPU seconds the
  whole process tree spent by then (steadier than wall time on a shared machine);
- RSS and PSS summed over the whole process tree after 20 ``/health`` requests and 3 s of idling.

Servers: bare FastAPI under uvicorn (the floor), ``python -m core serve`` with every plugin, and the
peer, MLflow's tracking server (``mlflow server``, one worker, SQLite). Target: plughost < 1.0 s.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import psutil

from benchmarks.guard import get_many
from benchmarks.harness import MiB, benchmark_main, plughost_server, python_server, server, tree_cpu
from benchmarks.peers import MLFLOW_ENV, MLFLOW_START_TIMEOUT, mlflow_server_command, mlflow_version


@dataclass
class Starts:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    pss: list[float] = field(default_factory=list)
    processes: int = 0


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def start_once(command: list[str], port: int, env: dict[str, str], timeout: float, into: Starts) -> None:
    started = time.perf_counter()
    with server(command, port, health="/health", env=env, timeout=timeout) as running:
        into.wall.append(time.perf_counter() - started)
        into.cpu.append(tree_cpu(running.pid))
        asyncio.run(get_many(port, "/health", 20, 1))
        time.sleep(3)
        processes = tree(running.pid)
        memory = [process.memory_full_info() for process in processes]
        into.rss.append(sum(info.rss for info in memory) / MiB)
        into.pss.append(sum(info.pss for info in memory) / MiB)
        into.processes = len(processes)


def run(quick: bool) -> str:
    starts = 2 if quick else 3
    peer = f"MLflow {mlflow_version()} tracking server"
    with tempfile.TemporaryDirectory() as plughost_dir, tempfile.TemporaryDirectory() as mlflow_dir:
        servers: dict[str, Callable[[], tuple[list[str], int, dict[str, str], float]]] = {
            "bare FastAPI (uvicorn)": lambda: (*python_server("benchmarks.apps", "bare-fastapi"), {}, 60.0),
            "plughost, every plugin": lambda: (*plughost_server(), {"PLUGHOST_DATA_DIR": plughost_dir}, 120.0),
            peer: lambda: (*mlflow_server_command(mlflow_dir), MLFLOW_ENV, MLFLOW_START_TIMEOUT),
        }
        found = {label: Starts() for label in servers}
        for make in servers.values():  # the first start migrates the store: not timed
            command, port, env, timeout = make()
            with server(command, port, health="/health", env=env, timeout=timeout):
                pass
        for _ in range(starts):
            for label, make in servers.items():
                command, port, env, timeout = make()
                start_once(command, port, env, timeout, found[label])
                print(f"  {label}: {found[label].wall[-1]:.2f} s, {found[label].cpu[-1]:.2f} s CPU", file=sys.stderr)
    bare = found["bare FastAPI (uvicorn)"]
    ours = found["plughost, every plugin"]
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}: medians of {starts} "
        "starts each on an already migrated store, the servers taking turns; one uvicorn worker each. "
        f"Load average at the start: {' / '.join(f'{x:.1f}' for x in psutil.getloadavg())}.",
        "",
        "| server | to /health, wall s | tree CPU s | processes | idle RSS MiB | idle PSS MiB "
        "| wall vs plughost | RSS vs plughost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, figures in found.items():
        wall, cpu = statistics.median(figures.wall), statistics.median(figures.cpu)
        rss, pss = statistics.median(figures.rss), statistics.median(figures.pss)
        lines.append(
            f"| {label} | {wall:.2f} | {cpu:.2f} | {figures.processes} | {rss:.0f} | {pss:.0f} "
            f"| {wall / statistics.median(ours.wall):.2f}x | {rss / statistics.median(ours.rss):.2f}x |"
        )
    lines += [
        "",
        f"Target: plughost cold start < 1.0 s: {statistics.median(ours.wall):.2f} s "
        f"({'met' if statistics.median(ours.wall) < 1.0 else 'not met'}); "
        f"{statistics.median(ours.wall) / statistics.median(bare.wall):.2f}x bare FastAPI's wall time, "
        f"{statistics.median(ours.cpu) / statistics.median(bare.cpu):.2f}x its CPU.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "Start-up and idle memory", "startup", run)
