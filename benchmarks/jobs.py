"""Jobs benchmark: idle memory of the whole server tree, worker respawn latency, and submit-to-start
latency and jobs/s for trivial jobs, embedded and on PostgreSQL.

Idle memory: ``python -m core serve`` with every installed plugin, the sum of RSS
and of PSS over its process tree once it is idle; then the same server with
``bench.noop`` while its job worker and fork server are up after a job, and again
once they exited after ``PLUGHOST_JOBS_IDLE_SECONDS``. The reference server's
figures (491 MiB with jobs off, 2.6 GiB with jobs on) come from /work/shared/README.md
(measured on this machine; it is not installed here). Respawn: a worker killed
(timeout, cancel) is replaced by a fork of the warm fork server, timed from the
kill to the new worker's ready message; the peer is a cold start (a new
interpreter importing the job modules, what every replacement cost before).

    python -m benchmarks.jobs [--quick] [--write]

The job is ``bench.noop`` (returns ``{}``), contributed by a plugin in this module.
Embedded: one server process on SQLite with 2 job subprocesses. PostgreSQL: an
API-only server plus one ``jobs worker`` process with 2 job subprocesses, woken by
LISTEN/NOTIFY. Figures: the median and p95 of started_at - created_at (both
server-side) for jobs submitted one at a time to an idle queue, and jobs/s for a
burst of jobs submitted over 8 connections (first submit to last finish).
Peers, measured in the same run: an in-memory ``ProcessPoolExecutor`` of 2
processes (the floor: no HTTP, no database, nothing survives a restart), and a
new Python process per job that imports the job's module (two at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import httpx
from pydantic import BaseModel

from benchmarks.harness import ROOT, MiB, free_port, post_many, postgresql_database, server
from core import hookimpl
from plugins.jobs.hookspecs import JobContext, JobType

PLUGHOST_NAME = "benchjobs"
SLOTS = 2


class NoParameters(BaseModel):
    pass


def noop(params: NoParameters, job: JobContext | None) -> dict[str, Any]:
    return {}


@hookimpl(optionalhook=True)
def plughost_job_types(host: Any) -> JobType:
    return JobType("bench.noop", noop, NoParameters, description="Does nothing: measures the queue")


def _host(
    database_url: str | None, data_dir: str, workers: int, every_plugin: bool = False, idle_seconds: float = 60.0
) -> Any:
    from core.factory import build_host
    from core.settings import CoreSettings

    settings = CoreSettings(database_url=database_url, data_dir=data_dir, plugins=None if every_plugin else ("jobs",))
    plugin = importlib.import_module("benchmarks.jobs")  # not __main__: the job subprocesses import it by this name
    overrides = {"jobs": {"workers": workers, "idle_seconds": idle_seconds}}
    return build_host(settings, given={PLUGHOST_NAME: plugin}, overrides=overrides)


def serve(
    port: str, data_dir: str, database_url: str, workers: str, every_plugin: str = "", idle_seconds: str = "60"
) -> None:
    """``python -m benchmarks.jobs serve ...``: the server, as ``python -m core serve`` runs it, plus ``bench.noop``."""
    import uvicorn

    from core.factory import assemble, build_app
    from core.server import NoDelayHTTPProtocol

    host = _host(database_url or None, data_dir, int(workers), bool(every_plugin), float(idle_seconds))
    app = build_app(assemble(host))
    uvicorn.run(app, host="127.0.0.1", port=int(port), http=NoDelayHTTPProtocol, log_level="warning")


def worker(data_dir: str, database_url: str) -> None:
    """``python -m benchmarks.jobs worker ...``: ``python -m core jobs worker`` plus ``bench.noop``."""
    from plugins.jobs.service import run_worker

    asyncio.run(run_worker(_host(database_url, data_dir, SLOTS), SLOTS))


@contextmanager
def plughost(backend: str) -> Iterator[str]:
    """A running server (and, on PostgreSQL, a separate worker process); yields the base URL."""
    with tempfile.TemporaryDirectory() as data_dir, contextlib.ExitStack() as stack:
        url = stack.enter_context(postgresql_database()) if backend == "postgresql" else ""
        port = free_port()
        in_server = SLOTS if backend == "sqlite" else 0
        command = [sys.executable, "-m", "benchmarks.jobs", "serve", str(port), data_dir, url, str(in_server)]
        with server(command, port, health="/health"):
            if backend == "postgresql":
                worker_process = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.jobs", "worker", data_dir, url],
                    cwd=ROOT,
                    stderr=subprocess.DEVNULL,
                )
                stack.callback(worker_process.wait, 30)
                stack.callback(worker_process.terminate)
            base = f"http://127.0.0.1:{port}"
            wait_all(base, [submit(base) for _ in range(10)])  # warm up: every job subprocess has run once
            yield base


def submit(base: str) -> str:
    return str(httpx.post(f"{base}/api/jobs", json={"type": "bench.noop"}).raise_for_status().json()["id"])


def wait_all(base: str, ids: list[str], timeout: float = 300) -> list[dict[str, Any]]:
    """Wait until no job is queued or running (asking cheaply, so the polling costs the server little),
    then read ``ids``."""
    deadline = time.monotonic() + timeout
    while any(
        httpx.get(f"{base}/api/jobs", params={"status": status, "limit": 1}).json()["jobs"]
        for status in ("PENDING", "RUNNING")
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still queued after {timeout} s")
        time.sleep(0.1)
    jobs = httpx.get(f"{base}/api/jobs", params={"limit": 1000}).json()["jobs"]
    done = [job for job in jobs if job["id"] in set(ids)]
    failed = [job for job in done if job["status"] != "SUCCEEDED"]
    if failed or len(done) != len(ids):
        raise RuntimeError(f"{len(ids)} jobs submitted, {len(done) - len(failed)} succeeded: {failed[:1]}")
    return done


def seconds(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def measure(backend: str, one_by_one: int, burst: int) -> dict[str, float]:
    with plughost(backend) as base:
        latencies = []
        for _ in range(one_by_one):
            job = wait_all(base, [submit(base)])[0]
            latencies.append(seconds(job["started_at"]) - seconds(job["created_at"]))
        port = int(base.rsplit(":", 1)[1])
        body = json.dumps({"type": "bench.noop"}).encode()
        before = {job["id"] for job in httpx.get(f"{base}/api/jobs", params={"limit": 1000}).json()["jobs"]}
        asyncio.run(post_many(port, "/api/jobs", [body] * burst, 8, {"Content-Type": "application/json"}))
        listed = httpx.get(f"{base}/api/jobs", params={"limit": 1000}).json()["jobs"]
        jobs = wait_all(base, [job["id"] for job in listed if job["id"] not in before])
    if len(jobs) != burst:
        raise RuntimeError(f"{backend}: submitted {burst} jobs, found {len(jobs)}")
    span = max(seconds(job["finished_at"]) for job in jobs) - min(seconds(job["created_at"]) for job in jobs)
    return _figures(latencies, burst / span)


def process_per_job(one_by_one: int, burst: int) -> dict[str, float]:
    """The peer: each job a fresh ``python`` that imports this module and runs the job."""
    code = "import sys, json; from benchmarks.jobs import noop, NoParameters; json.dumps(noop(NoParameters(), None))"

    def run_one(_: int) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        return time.perf_counter() - started

    latencies = [run_one(0) for _ in range(one_by_one)]  # a process's start-up is its submit-to-start latency
    started = time.perf_counter()
    with ThreadPoolExecutor(SLOTS) as pool:
        list(pool.map(run_one, range(burst)))
    return _figures(latencies, burst / (time.perf_counter() - started))


def started_at(_: int) -> float:
    return time.time()


def in_memory_pool(one_by_one: int, burst: int) -> dict[str, float]:
    """The floor: a warm ``ProcessPoolExecutor``; latency is submit to the job's first line."""
    with ProcessPoolExecutor(SLOTS) as pool:
        list(pool.map(started_at, range(SLOTS * 4)))  # warm
        latencies = []
        for index in range(one_by_one):
            submitted = time.time()
            latencies.append(pool.submit(started_at, index).result() - submitted)
        begun = time.perf_counter()
        futures = [pool.submit(noop, NoParameters(), None) for _ in range(burst)]
        for future in futures:
            future.result()
        return _figures(latencies, burst / (time.perf_counter() - begun))


def _figures(latencies: list[float], jobs_per_second: float) -> dict[str, float]:
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000,
        "jobs_per_second": jobs_per_second,
    }


REFERENCE_IDLE_MIB = {"jobs off": 491, "jobs on": 2.6 * 1024}
"""The reference server's idle memory on this machine (/work/shared/README.md)."""


def tree_memory(pid: int) -> tuple[float, float, int]:
    """(RSS MiB, PSS MiB, processes) summed over ``pid`` and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    rss = pss = 0
    processes = [root, *root.children(recursive=True)]
    for process in processes:
        info = process.memory_full_info()
        rss += info.rss
        pss += info.pss
    return rss / MiB, pss / MiB, len(processes)


def settle(pid: int, seconds: float = 3.0) -> tuple[float, float, int]:
    """The tree's memory after ``seconds`` with no requests (start-up allocations done, idle timers run)."""
    time.sleep(seconds)
    return tree_memory(pid)


def idle_memory() -> dict[str, tuple[float, float, int]]:
    figures = {}
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "core",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--data-dir",
            data_dir,
        ]
        with server(command, port, health="/health") as running:
            figures["`python -m core serve`, every plugin, idle"] = settle(running.pid)
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        idle_seconds = 2.0
        command = [
            sys.executable,
            "-m",
            "benchmarks.jobs",
            "serve",
            str(port),
            data_dir,
            "",
            str(SLOTS),
            "every",
            str(idle_seconds),
        ]
        with server(command, port, health="/health") as running:
            base = f"http://127.0.0.1:{port}"
            figures["same + `bench.noop`, idle before any job"] = settle(running.pid)
            wait_all(base, [submit(base) for _ in range(SLOTS * 4)])
            figures[f"same, just after {SLOTS * 4} jobs (fork server + {SLOTS} workers up)"] = tree_memory(running.pid)
            figures[f"same, {idle_seconds:g} s idle later (workers and fork server exited)"] = settle(
                running.pid, idle_seconds + 3
            )
    return figures


async def _respawns(count: int) -> tuple[list[float], list[float]]:
    from plugins.jobs.pool import REPLY_OVERHEAD_BYTES, ProcessPool, Worker

    cold, warm = [], []
    for _ in range(3):
        pool = ProcessPool(1, ["benchmarks.jobs"], REPLY_OVERHEAD_BYTES, idle_seconds=60)
        slot = pool.processes[0]
        started = time.perf_counter()
        slot.worker = await Worker.fork(pool.server, REPLY_OVERHEAD_BYTES)
        cold.append(time.perf_counter() - started)
        for _ in range(count // 3):
            started = time.perf_counter()
            await slot.kill()
            slot.worker = await Worker.fork(pool.server, REPLY_OVERHEAD_BYTES)
            warm.append(time.perf_counter() - started)
        await pool.close()
    return cold, warm


def respawn_latency(count: int) -> tuple[float, float]:
    """Medians in ms: a cold start (new fork server + worker), and kill + replacement from the warm fork server."""
    cold, warm = asyncio.run(_respawns(count))
    return statistics.median(cold) * 1000, statistics.median(warm) * 1000


def memory_and_respawn(quick: bool) -> list[str]:
    figures = idle_memory()
    cold_ms, warm_ms = respawn_latency(15 if quick else 60)
    idle_rss = next(iter(figures.values()))[0]
    lines = [
        "Idle memory: the sum over the server's whole process tree "
        "(RSS counts shared pages once per process; PSS splits them).",
        "",
        "| server | processes | RSS MiB | PSS MiB | reference (jobs off / on) | RSS vs reference, jobs on |",
        "|---|---|---|---|---|---|",
    ]
    for label, (rss, pss, count) in figures.items():
        lines.append(
            f"| {label} | {count} | {rss:.0f} | {pss:.0f} "
            f"| {REFERENCE_IDLE_MIB['jobs off']:.0f} / {REFERENCE_IDLE_MIB['jobs on']:.0f} MiB "
            f"| {rss / REFERENCE_IDLE_MIB['jobs on']:.3f}x |"
        )
    lines += [
        "",
        f"Goal: idle tree RSS at most 150 MiB: {idle_rss:.0f} MiB ({'met' if idle_rss <= 150 else 'NOT met'}).",
        "",
        "| worker start | median ms | vs cold start |",
        "|---|---|---|",
        "| cold: new fork server importing the job modules, then a worker (peer: the old per-process start) "
        f"| {cold_ms:.1f} | 1.00x |",
        "| replacement after a kill: kill, reap, fork from the warm fork server, ready "
        f"| {warm_ms:.1f} | {warm_ms / cold_ms:.3f}x |",
        "",
    ]
    return lines


def run(quick: bool) -> str:
    memory_lines = memory_and_respawn(quick)
    one_by_one, burst = (10, 50) if quick else (50, 500)
    peers = {
        "in-memory process pool (peer: the floor)": in_memory_pool(one_by_one, burst),
        "process per job (peer)": process_per_job(one_by_one, 40 if quick else 100),
    }
    floor = peers["in-memory process pool (peer: the floor)"]
    lines = [
        *memory_lines,
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, {os.cpu_count()} cores: "
        f"submit-to-start over {one_by_one} jobs submitted one at a time to an idle queue; jobs/s over a burst of "
        f"{burst} submitted on 8 connections; {SLOTS} job subprocesses. Peers measured in this run.",
        "",
        "| engine | durable | submit-to-start p50 ms | p95 ms | jobs/s "
        "| p50 vs in-memory pool | jobs/s vs in-memory pool |",
        "|---|---|---|---|---|---|---|",
    ]
    results = dict(peers)
    for backend, label in (
        ("sqlite", "plughost embedded (SQLite, in-server workers)"),
        ("postgresql", "plughost PostgreSQL (API server + `jobs worker`)"),
    ):
        results[label] = measure(backend, one_by_one, burst)
        print(f"  {label}: {results[label]}", file=sys.stderr)
    for label, result in results.items():
        durable = "yes" if label.startswith("plughost") else "no"
        lines.append(
            f"| {label} | {durable} | {result['p50_ms']:.2f} | {result['p95_ms']:.2f} "
            f"| {result['jobs_per_second']:.0f} | {result['p50_ms'] / floor['p50_ms']:.1f}x "
            f"| {result['jobs_per_second'] / floor['jobs_per_second']:.3f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(*sys.argv[2:])
    elif sys.argv[1:2] == ["worker"]:
        worker(*sys.argv[2:])
    else:
        from benchmarks.harness import benchmark_main

        benchmark_main(__doc__ or "", "Jobs", "jobs", run)
