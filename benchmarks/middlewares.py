"""Middleware benchmark: ``/health`` through plughost's three built-in middlewares vs a bare FastAPI app.

    python -m benchmarks.middlewares [--quick] [--write]

Each server is one uvicorn worker with the same HTTP protocol class; wrk drives
``GET /health`` at concurrency 1 and 32; figures are medians of several runs.
Target: plughost with security, workspace and timing >= 0.8 x bare FastAPI.
"""

from __future__ import annotations

import platform
import sys
from datetime import date

from benchmarks.harness import WrkResult, benchmark_main, median_wrk, plughost_server, python_server, ratio, server

CONCURRENCIES = (1, 32)


def measure(
    command: list[str], port: int, seconds: float, runs: int, env: dict[str, str] | None = None
) -> dict[int, WrkResult]:
    with server(command, port, health="/health", env=env):
        return {c: median_wrk(f"http://127.0.0.1:{port}/health", c, seconds, runs) for c in CONCURRENCIES}


def run(quick: bool) -> str:
    seconds, runs = (2, 1) if quick else (5, 3)
    results: dict[str, dict[int, WrkResult]] = {}
    command, port = python_server("benchmarks.apps", "bare-fastapi")
    results["bare FastAPI"] = measure(command, port, seconds, runs)
    for label, plugins in (
        ("plughost, no plugins", ""),
        ("plughost + security, workspace, timing", "security,workspace,timing"),
    ):
        command, port = plughost_server()
        results[label] = measure(command, port, seconds, runs, {"PLUGHOST_PLUGINS": plugins})
        print(
            f"  {label}: {results[label][1].requests_per_second:.0f}"
            f" / {results[label][32].requests_per_second:.0f} req/s",
            file=sys.stderr,
        )

    bare = results["bare FastAPI"]
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, "
        "one uvicorn worker each; medians.",
        "",
        "| server | c=1 req/s | c=1 p50/p99 ms | c=32 req/s | c=32 p50/p99 ms | c=1 vs bare | c=32 vs bare |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, by_concurrency in results.items():
        one, many = by_concurrency[1], by_concurrency[32]
        lines.append(
            f"| {label} | {one.requests_per_second:.0f} | {one.p50_ms:.2f}/{one.p99_ms:.2f} | "
            f"{many.requests_per_second:.0f} | {many.p50_ms:.2f}/{many.p99_ms:.2f} | "
            f"{ratio(one.requests_per_second, bare[1].requests_per_second)} | "
            f"{ratio(many.requests_per_second, bare[32].requests_per_second)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "Middlewares: /health", "middlewares", run)
