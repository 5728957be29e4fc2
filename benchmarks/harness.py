"""Start servers in their own processes, measure their peak memory, drive load with wrk."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def reset_peak(self) -> None:
        """Make the kernel's peak-RSS counter (VmHWM) start again from the current RSS."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def memory(self) -> tuple[int, int]:
        """(current RSS, peak RSS since the last reset), in bytes."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


@contextmanager
def server(
    command: Sequence[str], port: int, health: str = "/small", timeout: float = 30.0, env: dict[str, str] | None = None
) -> Iterator[Server]:
    environment = {**os.environ, **(env or {})}
    # Bytecode caches as an installed server has them, even where the environment says not to write them
    # (this machine's sessions set PYTHONDONTWRITEBYTECODE; .ci/run unsets it too): otherwise every start
    # compiles the project's 140 modules again, a tenth of plughost's start-up CPU.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    # The references (bare FastAPI...) without logfire's pydantic plugin too, as plughost's server runs
    # (core.startup): it comes with the test extra, not with FastAPI, and costs a third of a second a start.
    environment.setdefault("PYDANTIC_DISABLE_PLUGINS", "logfire-plugin")
    # stderr to a file, not a pipe: a server logging each request (an access log) would fill a pipe
    # that nobody reads and block on it; kept in BENCH_SERVER_LOGS, a folder, when that is set
    with _server_log(command) as errors:
        process = subprocess.Popen(list(command), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors, env=environment)
        running = Server(process, port)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(f"{command} exited: {errors.read().decode(errors='replace')[-4000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                        sock.sendall(f"GET {health} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
                        if sock.recv(64).startswith(b"HTTP/1.1 200"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not start")
                time.sleep(0.1)
            yield running
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _server_log(command: Sequence[str]) -> IO[bytes]:
    """A file for a server's stderr: a temporary one, or a named one in ``$BENCH_SERVER_LOGS`` to read after
    the run (what a server logged while it answered a 503, say)."""
    folder = os.environ.get("BENCH_SERVER_LOGS")
    if not folder:
        return tempfile.TemporaryFile()
    Path(folder).mkdir(parents=True, exist_ok=True)
    program = command[command.index("-m") + 1] if "-m" in command else Path(command[0]).name
    name = f"{time.strftime('%H%M%S')}-{program}-{uuid.uuid4().hex[:6]}.log"
    return (Path(folder) / name).open("w+b")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the process and its descendants so far, reaped children included:
    the cost of a server's work, steadier than its rates on a machine that other work keeps busy."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:  # ended meanwhile
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def plughost_server() -> tuple[list[str], int]:
    """The command that serves plughost (one worker) on a free port, and the port."""
    port = free_port()
    return [sys.executable, "-m", "core", "serve", "--port", str(port), "--log-level", "warning"], port


def python_server(module: str, *args: str) -> tuple[list[str], int]:
    port = free_port()
    return [sys.executable, "-m", module, *args, str(port)], port


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run benchmarks/run, which installs it (apt-get install -y wrk)")
    return wrk


def wrk(url: str, connections: int, seconds: float) -> WrkResult:
    threads = min(2, connections)
    out = subprocess.run(
        [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, _latency(out, "50%"), _latency(out, "99%"))


def _latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median_wrk(url: str, connections: int, seconds: float, runs: int) -> WrkResult:
    results = [wrk(url, connections, seconds) for _ in range(runs)]
    return WrkResult(
        statistics.median(r.requests_per_second for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
    )


@dataclass
class LoadResult:
    """wrk's figures at one concurrency, and the server's CPU per request over the same runs."""

    wrk: WrkResult
    cpu_ms: float


def measure_gets(
    running: Server, path: str, concurrencies: Sequence[int], seconds: float, runs: int
) -> dict[int, LoadResult]:
    """``GET path`` with wrk at each concurrency (medians of ``runs``), and the server tree's CPU per request,
    after a few requests that warm the server up (MLflow loads its Flask app on the first one: seconds)."""
    import httpx

    for _ in range(5):
        answer = httpx.get(f"http://127.0.0.1:{running.port}{path}", timeout=300)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
    found = {}
    for connections in concurrencies:
        cpu_before = tree_cpu(running.pid)
        results = [wrk(f"http://127.0.0.1:{running.port}{path}", connections, seconds) for _ in range(runs)]
        cpu = tree_cpu(running.pid) - cpu_before
        requests = sum(r.requests_per_second for r in results) * seconds
        found[connections] = LoadResult(
            WrkResult(
                statistics.median(r.requests_per_second for r in results),
                statistics.median(r.p50_ms for r in results),
                statistics.median(r.p99_ms for r in results),
            ),
            cpu / requests * 1000 if requests else float("nan"),
        )
    return found


def median_loads(results: list[dict[int, LoadResult]]) -> dict[int, LoadResult]:
    """Per concurrency, the median of each figure over ``results`` (one per round)."""
    return {
        c: LoadResult(
            WrkResult(
                statistics.median(r[c].wrk.requests_per_second for r in results),
                statistics.median(r[c].wrk.p50_ms for r in results),
                statistics.median(r[c].wrk.p99_ms for r in results),
            ),
            statistics.median(r[c].cpu_ms for r in results),
        )
        for c in results[0]
    }


def load_table(found: dict[str, list[dict[int, LoadResult]]], reference: str, name: str) -> list[str]:
    """A markdown table of :func:`measure_gets` rounds at c=1 and c=32, medians, each server against
    ``reference`` (called ``name`` in the header): rates, and CPU (the reference's over the server's)."""
    medians = {label: median_loads(results) for label, results in found.items()}
    limit = medians[reference]
    lines = [
        "| server | c=1 req/s | c=1 p50/p99 ms | c=1 CPU ms/req | c=32 req/s | c=32 p50/p99 ms | c=32 CPU ms/req "
        f"| c=1 vs {name} | c=32 vs {name} | CPU vs {name} c=1 / c=32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, by_concurrency in medians.items():
        one, many = by_concurrency[1], by_concurrency[32]
        lines.append(
            f"| {label} | {one.wrk.requests_per_second:.0f} | {one.wrk.p50_ms:.2f}/{one.wrk.p99_ms:.2f} "
            f"| {one.cpu_ms:.3f} | {many.wrk.requests_per_second:.0f} | {many.wrk.p50_ms:.2f}/{many.wrk.p99_ms:.2f} "
            f"| {many.cpu_ms:.3f} | {ratio(one.wrk.requests_per_second, limit[1].wrk.requests_per_second)} "
            f"| {ratio(many.wrk.requests_per_second, limit[32].wrk.requests_per_second)} "
            f"| {ratio(limit[1].cpu_ms, one.cpu_ms)} / {ratio(limit[32].cpu_ms, many.cpu_ms)} |"
        )
    return lines


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "n/a"


RESULTS = Path(__file__).with_name("RESULTS.md")


def benchmark_main(description: str, heading: str, name: str, run: Callable[[bool], str]) -> None:
    """The command line every benchmark shares: ``[--quick] [--write]``; prints its table and
    with ``--write`` puts it in RESULTS.md under ``## heading``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, to check the harness")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    table = run(args.quick)
    print(table)
    if args.write:
        section = f"## {heading}\n\nCommand: `benchmarks/run {name}`\n\n{table}\n"
        RESULTS.write_text(replace_section(RESULTS.read_text() if RESULTS.exists() else "", f"## {heading}", section))


def replace_section(text: str, heading: str, section: str) -> str:
    """Replace the ``heading`` section of RESULTS.md (up to the next ``## ``), or append it."""
    if heading not in text:
        return (text.rstrip() + "\n\n" + section) if text.strip() else "# Benchmark results\n\n" + section
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[:start] + (section.rstrip("\n") + "\n\n" + text[end + 1 :] if end != -1 else section)


async def post_many(
    port: int, path: str, bodies: Sequence[bytes], concurrency: int, headers: dict[str, str]
) -> list[float]:
    """POST every body over ``concurrency`` keep-alive connections; return each latency in seconds.

    A minimal HTTP/1.1 client on asyncio streams, so that the load generator
    costs little of this 2-core machine next to the server it measures.
    """
    import asyncio

    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    pending = iter(bodies)
    latencies: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in pending:
                started = time.perf_counter()
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                status_line = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if not status_line.startswith(b"HTTP/1.1 2"):
                    raise RuntimeError(f"{path}: {status_line!r}")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies


async def read_response(reader: Any) -> bytes:
    """Read one HTTP/1.1 response with a ``Content-Length`` from an asyncio stream; returns its status line."""
    status_line: bytes = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status_line


POSTGRESQL = os.environ.get("PLUGHOST_TEST_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The PostgreSQL server benchmarks create their databases on (the same variable the tests use)."""


@contextmanager
def postgresql_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one measurement; yields its SQLAlchemy URL, drops it after."""
    import asyncio

    import asyncpg

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRESQL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    name = f"plughost_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRESQL.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
