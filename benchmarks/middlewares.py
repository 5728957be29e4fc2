"""Middleware benchmark: ``/health`` through plughost's whole stack vs a bare FastAPI app, beside the peer.

    python -m benchmarks.middlewares [--quick] [--write]

Each server is one uvicorn worker; wrk drives ``GET /health`` at concurrency 1 and 32; the servers
take turns over several rounds, and each figure is the median of its rounds, with the server's CPU
per request (its process tree), steadier than rates on a shared machine. The peer is MLflow's
tracking server, whose ``/health`` is a FastAPI route in front of its Flask app, as plughost's is.
Targets: every plugin >= 0.8 x bare FastAPI at ``--log-level warning``, >= 0.7 x with the access log.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from datetime import date

from benchmarks.harness import (
    LoadResult,
    benchmark_main,
    load_table,
    measure_gets,
    plughost_server,
    python_server,
    server,
)
from benchmarks.peers import mlflow_server, mlflow_version

CONCURRENCIES = (1, 32)
BARE = "bare FastAPI"
PLUGHOST_SETUPS = (
    ("plughost, no plugins", "", "warning"),
    ("plughost + security, workspace, timing", "security,workspace,timing", "warning"),
    ("plughost, every plugin", None, "warning"),
    ("plughost, every plugin, access log on", None, "info"),
)


def measure_plughost(
    plugins: str | None, log_level: str, data_dir: str, seconds: float, runs: int
) -> dict[int, LoadResult]:
    command, port = plughost_server()
    command[command.index("--log-level") + 1] = log_level
    env = {"PLUGHOST_DATA_DIR": data_dir} | ({} if plugins is None else {"PLUGHOST_PLUGINS": plugins})
    with server(command, port, health="/health", env=env, timeout=120) as running:
        return measure_gets(running, "/health", CONCURRENCIES, seconds, runs)


def run(quick: bool) -> str:
    seconds, runs, rounds = (2, 1, 1) if quick else (4, 2, 3)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    peer = f"MLflow {mlflow_version()} (its FastAPI `/health`)"
    found: dict[str, list[dict[int, LoadResult]]] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        for _ in range(rounds):
            command, port = python_server("benchmarks.apps", "bare-fastapi")
            with server(command, port, health="/health") as running:
                found.setdefault(BARE, []).append(measure_gets(running, "/health", CONCURRENCIES, seconds, runs))
            for label, plugins, log_level in PLUGHOST_SETUPS:
                found.setdefault(label, []).append(measure_plughost(plugins, log_level, data_dir, seconds, runs))
                print(f"  {label}: {found[label][-1][1].wrk.requests_per_second:.0f} req/s at c=1", file=sys.stderr)
            with mlflow_server() as running:
                found.setdefault(peer, []).append(measure_gets(running, "/health", CONCURRENCIES, seconds, runs))

    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, load average {load} "
        f"at the start: one uvicorn worker each; {rounds} rounds, the servers taking turns; in each, wrk {runs} x "
        f"{seconds} s per concurrency; medians. CPU = the server's process tree per request.",
        "",
        *load_table(found, BARE, "bare"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "Middlewares: /health", "middlewares", run)
