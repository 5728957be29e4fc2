"""The CI guard: a benchmark figure that falls more than 15 % below its recorded value fails the check.

    python -m benchmarks.guard            measure, compare with benchmarks/guard.json, exit 1 on a fall
    python -m benchmarks.guard --record   measure and write the figures as the new recorded values

Each figure is the cost of a bare reference divided by plughost's cost for the same work, measured in the
same run, so the speed of the machine cancels out. The cost is **CPU time** of the server process (user +
system, every thread, from ``/proc``), not wall-clock time: on a shared 2-core machine other processes
take the cores away at random, which stretches latencies and request rates many times over, but hardly
changes how much CPU a request needs. Rounds alternate between the two servers; each figure is the
median of the rounds' ratios (start-up: the least CPU of its starts, as noise only adds to it).

- ``ingest``: 50-span OTLP/protobuf traces at concurrency 1, plughost with every plugin vs a bare
  FastAPI app that parses each request and writes its spans with one ``executemany`` into SQLite.
- ``health``: ``GET /health`` at concurrency 1 through the whole stack (every plugin, access log off)
  vs a bare FastAPI app.
- ``start-up``: CPU until ``/health`` first answers, ``python -m core serve`` (every plugin, migrated
  database) vs the bare FastAPI app under uvicorn.

The full benchmarks (``benchmarks/run``) stay outside CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from benchmarks.harness import ROOT, Server, free_port, post_many, read_response, server
from benchmarks.otel import PROTOBUF, payload

RECORDED = Path(__file__).with_name("guard.json")
TOLERANCE = 0.15
"""A figure may fall this far below its recorded value (a fraction) before the check fails."""
ROUNDS = 3
TURNS = 4
INGEST_REQUESTS = 48
HEALTH_REQUESTS = 2400
"""A round's ``/health`` requests for each server (a third of a second of CPU each). With 600, its rounds read
0.52 to 0.93 on one quiet machine, and the median of three fell under the floor in one run of three; with 2400,
0.66 to 0.86 over nine runs."""
CONCURRENCY = 1
STARTS = 2
START_TIMEOUT = 180.0
"""Seconds a server may take to answer /health: minutes on a machine that other work keeps busy."""
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far, every thread (those that ended included), in ticks
    of 10 ms: for a whole start-up."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def thread_cpu(pid: int) -> dict[int, int]:
    """CPU nanoseconds of each live thread of the process (``schedstat``: exact, where ticks of 10 ms
    would be a tenth of a round's work)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return found


def bare_app() -> FastAPI:
    """The reference: FastAPI with ``/health`` and an OTLP endpoint that stores spans the plainest way."""
    app = FastAPI()
    database = sqlite3.connect(Path(tempfile.mkdtemp()) / "bare.db", check_same_thread=False)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=NORMAL")
    database.execute(
        "CREATE TABLE spans (trace_id TEXT, span_id TEXT, name TEXT, start_ns INT, end_ns INT, span BLOB, "
        "PRIMARY KEY (trace_id, span_id))"
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/traces")
    async def ingest(request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        rows = [
            (
                s.trace_id.hex(),
                s.span_id.hex(),
                s.name,
                s.start_time_unix_nano,
                s.end_time_unix_nano,
                s.SerializeToString(),
            )
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for s in scope.spans
        ]
        with database:
            database.executemany("INSERT OR IGNORE INTO spans VALUES (?, ?, ?, ?, ?, ?)", rows)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    return app


BARE_COMMAND = [sys.executable, "-m", "benchmarks.guard", "--serve-bare"]


def plughost_command(port: int) -> list[str]:
    return [sys.executable, "-m", "core", "serve", "--port", str(port), "--log-level", "warning"]


@contextmanager
def servers(data_dir: str) -> Iterator[dict[str, Server]]:
    """plughost (every plugin, gRPC on a free port) and the bare reference, both up."""
    env = {"PLUGHOST_DATA_DIR": data_dir, "PLUGHOST_OTEL_GRPC_ADDRESS": f"127.0.0.1:{free_port()}"}
    with ExitStack() as stack:
        ours, bare = free_port(), free_port()
        plughost = server(plughost_command(ours), ours, health="/health", env=env, timeout=START_TIMEOUT)
        reference = server([*BARE_COMMAND, str(bare)], bare, health="/health", timeout=START_TIMEOUT)
        yield {"plughost": stack.enter_context(plughost), "bare": stack.enter_context(reference)}


async def get_many(port: int, path: str, count: int, concurrency: int) -> None:
    """``count`` GETs of ``path`` over ``concurrency`` keep-alive connections."""
    remaining = iter(range(count))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in remaining:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status = await read_response(reader)
                if not status.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"GET {path}: {status!r}")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


def cpu_of(running: Server, work: Callable[[], object]) -> float:
    """CPU seconds the server spent while ``work`` ran (a thread that ended meanwhile is not counted:
    plughost's worker threads live in pools)."""
    before = thread_cpu(running.pid)
    work()
    after = thread_cpu(running.pid)
    return sum(spent - before.get(thread, 0) for thread, spent in after.items()) / 1e9


def measure_load(data_dir: str, figures: tuple[str, ...] = ("ingest", "health")) -> dict[str, list[float]]:
    """Per round, bare CPU / plughost CPU for the same ingest and the same ``/health`` requests. Within a
    round the two servers take turns, a slice of the work each, so both see the same load on the machine."""
    ratios: dict[str, list[float]] = {figure: [] for figure in figures}
    offset = 0
    with servers(data_dir) as running:

        def ingest(name: str, requests: int) -> Callable[[], object]:
            nonlocal offset
            bodies = [payload(offset + i) for i in range(requests)]
            offset += requests
            return lambda: asyncio.run(post_many(running[name].port, "/v1/traces", bodies, CONCURRENCY, PROTOBUF))

        def health(name: str, requests: int) -> Callable[[], object]:
            return lambda: asyncio.run(get_many(running[name].port, "/health", requests, CONCURRENCY))

        work = {"ingest": (ingest, INGEST_REQUESTS), "health": (health, HEALTH_REQUESTS)}
        for name in running:  # warm up: first requests build caches in both
            ingest(name, 10)()
            health(name, 100)()
        for _ in range(ROUNDS):
            for figure in figures:
                make, requests = work[figure]
                spent = {"plughost": 0.0, "bare": 0.0}
                for _ in range(TURNS):
                    for name in spent:
                        spent[name] += cpu_of(running[name], make(name, requests // TURNS))
                ratios[figure].append(spent["bare"] / spent["plughost"])
    return ratios


def start_cpu(command: list[str], port: int, env: dict[str, str]) -> float:
    """CPU seconds the server spent until ``/health`` first answered 200."""
    with server(command, port, health="/health", env=env, timeout=START_TIMEOUT) as running:
        return cpu_seconds(running.pid)


def measure_start_up(data_dir: str) -> list[float]:
    """bare CPU to /health / plughost CPU to /health, the least of each's starts (noise only adds to it);
    on the already migrated database in ``data_dir``."""
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(STARTS):
        port = free_port()
        env = {"PLUGHOST_DATA_DIR": data_dir, "PLUGHOST_OTEL_GRPC_ADDRESS": f"127.0.0.1:{free_port()}"}
        ours.append(start_cpu(plughost_command(port), port, env))
        port = free_port()
        bare.append(start_cpu([*BARE_COMMAND, str(port)], port, {}))
    return [min(bare) / min(ours)]


def measure(data_dir: str, figures: tuple[str, ...] = ("ingest", "health", "start-up")) -> dict[str, list[float]]:
    """The ratios of each figure asked for (the load first: it migrates the database the starts use)."""
    load = tuple(figure for figure in figures if figure != "start-up")
    found = measure_load(data_dir, load) if load else {}
    if "start-up" in figures:
        found["start-up"] = measure_start_up(data_dir)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write the measured figures to benchmarks/guard.json")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(), port=args.serve_bare, log_level="warning")
        return 0
    started = time.monotonic()
    recorded: dict[str, float] = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    with tempfile.TemporaryDirectory() as data_dir:
        samples = measure(data_dir)
        figures = {name: statistics.median(values) for name, values in samples.items()}
        fallen = tuple(name for name, figure in figures.items() if figure < recorded.get(name, 0.0) * (1 - TOLERANCE))
        if fallen and not args.record:  # a fall must show twice: a burst of load on the machine is not a regression
            print(f"measuring again: {', '.join(fallen)}")
            for name, values in measure(data_dir, fallen).items():
                samples[name] = samples[name] + values
                figures[name] = max(figures[name], statistics.median(values))
    failed = []
    print(f"{'figure':<10} {'bare CPU / plughost CPU':>24} {'recorded':>9} {'floor':>7}  rounds")
    for name, figure in figures.items():
        floor = recorded.get(name, 0.0) * (1 - TOLERANCE)
        verdict = "" if figure >= floor else "  FELL more than 15 % below the recorded value"
        rounds = " ".join(f"{value:.3f}" for value in samples[name])
        print(f"{name:<10} {figure:>24.3f} {recorded.get(name, float('nan')):>9.3f} {floor:>7.3f}  {rounds}{verdict}")
        if verdict:
            failed.append(name)
    print(f"({time.monotonic() - started:.0f} s; {ROOT.name})")
    if args.record:
        RECORDED.write_text(json.dumps({name: round(value, 3) for name, value in figures.items()}, indent=2) + "\n")
        print(f"recorded in {RECORDED}")
        return 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
