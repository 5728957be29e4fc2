"""WSGI bridge benchmark: the same Flask app behind plughost's bridge and its peers, in one run.

    python -m benchmarks.bridge [--quick] [--write]

Figures, each the median of several runs, with ratios against peers from this run:
- upload time and server peak RSS growth for 1, 16, 64 and 256 MiB bodies, read
  by the handler in 64 KiB pieces (the native ASGI endpoint is the limit);
- small GET requests/s and p50/p99 latency at concurrency 1 and 32 (wrk);
- server peak RSS growth while a slow client downloads a 256 MiB stream.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from datetime import date

from benchmarks.apps import CHUNK, VARIANTS
from benchmarks.harness import (
    LoadResult,
    MiB,
    Server,
    WrkResult,
    benchmark_main,
    load_table,
    measure_gets,
    median_wrk,
    plughost_server,
    python_server,
    ratio,
    server,
)
from benchmarks.peers import mlflow_server, mlflow_version

BRIDGES = tuple(v for v in VARIANTS if v != "native")
UPLOAD_TIMEOUT = 300.0


def upload(port: int, payload: bytes, read_size: int = CHUNK) -> float:
    """POST ``payload`` over a fresh connection; return seconds until the whole response is read.
    The handler reads the body in ``read_size`` pieces."""
    head = (
        f"POST /upload?read={read_size} HTTP/1.1\r\nHost: bench\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=UPLOAD_TIMEOUT) as sock:
        sock.sendall(head)
        sock.sendall(payload)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    elapsed = time.perf_counter() - started
    if not response.startswith(b"HTTP/1.1 200") or not response.endswith(str(len(payload)).encode()):
        raise RuntimeError(f"bad upload response: {response[:200]!r}")
    return elapsed


def idle_baseline(running: Server) -> int:
    """Warm the server up (a GET and a small upload), then return its RSS and restart its peak counter.

    Measured per fresh server: the allocator keeps freed memory resident, so a
    second large request on the same process would hide its own growth.
    """
    upload(running.port, b"w" * 1024)
    running.reset_peak()
    return running.memory()[0]


def measure_upload(variant: str, payload: bytes, runs: int, read_size: int = CHUNK) -> tuple[float, float]:
    """On a fresh server: median seconds, and peak RSS growth over the idle server in MiB."""
    command, port = python_server("benchmarks.apps", variant)
    with server(command, port, health="/small") as running:
        baseline = idle_baseline(running)
        times = [upload(port, payload, read_size) for _ in range(runs)]
        return statistics.median(times), (running.memory()[1] - baseline) / MiB


def slow_download(variant: str, size: int, seconds: float) -> float:
    """On a fresh server: peak RSS growth (MiB) while a client reads a ``size``-byte stream slowly."""
    command, port = python_server("benchmarks.apps", variant)
    with server(command, port, health="/small") as running:
        baseline = idle_baseline(running)
        _read_slowly(port, size, seconds)
        time.sleep(0.5)
        return (running.memory()[1] - baseline) / MiB


def _read_slowly(port: int, size: int, seconds: float) -> None:
    """Read at most ~6 MiB/s through a small receive buffer for ``seconds``, then hang up."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
        sock.sendall(f"GET /stream?bytes={size} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sock.recv(65536)
            time.sleep(0.01)


WHOLE_SERVERS = (
    ("bare Flask via a2wsgi (the limit)", "/small"),
    ("plughost, every plugin, console `/version`", "/version"),
    ("MLflow {version}, its Flask `/version`", "/version"),
)


def whole_servers(quick: bool) -> str:
    """A small Flask GET through each whole server: plughost's console behind its bridge (every plugin's
    middleware and routes in front), MLflow's Flask app behind its FastAPI app, and the bare limit."""
    seconds, runs, rounds = (2, 1, 1) if quick else (5, 2, 3)
    version = mlflow_version()
    found: dict[str, list[dict[int, LoadResult]]] = {}
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as data_dir:
        for _ in range(rounds):
            for label, path in WHOLE_SERVERS:
                label = label.format(version=version)
                with contextlib.ExitStack() as stack:
                    if label.startswith("bare"):
                        command, port = python_server("benchmarks.apps", "a2wsgi")
                        running = stack.enter_context(server(command, port, health="/small", timeout=120))
                    elif label.startswith("plughost"):
                        command, port = plughost_server()
                        env = {"PLUGHOST_DATA_DIR": data_dir}
                        running = stack.enter_context(server(command, port, health="/health", env=env, timeout=120))
                    else:
                        running = stack.enter_context(mlflow_server())
                    found.setdefault(label, []).append(measure_gets(running, path, (1, 32), seconds, runs))
                print(f"  {label}: {found[label][-1][1].wrk.requests_per_second:.0f} req/s at c=1", file=sys.stderr)
    lines = [
        f"Load average {load} at the start; {rounds} rounds, the servers taking turns; in each, wrk "
        f"{runs} x {seconds} s per concurrency; medians. CPU = the server's process tree per request. "
        "MLflow's `/version` is a Flask route returning its version string, as plughost's returns its "
        "version as JSON: the smallest route of each console, so the figure is the bridge and what stands "
        "before it, not the page.",
        "",
        *load_table(found, WHOLE_SERVERS[0][0], "limit"),
    ]
    return "\n".join(lines)


def run(quick: bool) -> str:
    whole = whole_servers(quick)
    sizes = (1, 16) if quick else (1, 16, 64, 256)
    wrk_seconds, wrk_runs = (2, 1) if quick else (5, 3)
    upload_rows: dict[int, dict[str, tuple[float, float]]] = {size: {} for size in sizes}
    get_rows: dict[str, dict[int, WrkResult]] = {}
    download_rows: dict[str, float] = {}
    read_sizes = (64 * 1024, 256 * 1024, 1024 * 1024)
    by_read_size = {
        variant: [measure_upload(variant, b"u" * (64 * MiB), runs=5, read_size=r)[0] for r in read_sizes]
        for variant in ("plughost", "a2wsgi", "native")
    }

    for variant in VARIANTS:
        for size in sizes:
            upload_rows[size][variant] = measure_upload(variant, b"u" * (size * MiB), runs=3 if size >= 64 else 5)
            print(f"  {variant:<10} upload {size:>3} MiB: {upload_rows[size][variant][0]:.3f} s", file=sys.stderr)
        command, port = python_server("benchmarks.apps", variant)
        with server(command, port, health="/small"):
            get_rows[variant] = {
                c: median_wrk(f"http://127.0.0.1:{port}/small", c, wrk_seconds, wrk_runs) for c in (1, 32)
            }
        print(
            f"  {variant:<10} GET: {get_rows[variant][1].requests_per_second:.0f}"
            f" / {get_rows[variant][32].requests_per_second:.0f} req/s",
            file=sys.stderr,
        )
        if variant != "native":
            download_rows[variant] = slow_download(variant, 256 * MiB, 2 if quick else 4)

    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, "
        f"uvicorn one worker each; medians.",
        "",
        "### Upload: seconds (server peak RSS growth, MiB)",
        "",
        "| body | " + " | ".join(VARIANTS) + " | plughost / native | a2wsgi / plughost |",
        "|---|" + "---|" * (len(VARIANTS) + 2),
    ]
    for size in sizes:
        row = upload_rows[size]
        cells = [f"{row[v][0]:.3f} ({row[v][1]:.0f})" for v in VARIANTS]
        lines.append(
            f"| {size} MiB | "
            + " | ".join(cells)
            + f" | {ratio(row['plughost'][0], row['native'][0])} | {ratio(row['a2wsgi'][0], row['plughost'][0])} |"
        )
    lines += [
        "",
        "### Small GET: requests/s, p50/p99 ms (wrk)",
        "",
        "| variant | c=1 req/s | c=1 p50/p99 | c=32 req/s | c=32 p50/p99 | c=1 vs plughost | c=32 vs plughost |",
        "|---|---|---|---|---|---|---|",
    ]
    ours = get_rows["plughost"]
    for variant in VARIANTS:
        one, many = get_rows[variant][1], get_rows[variant][32]
        lines.append(
            f"| {variant} | {one.requests_per_second:.0f} | {one.p50_ms:.2f}/{one.p99_ms:.2f} | "
            f"{many.requests_per_second:.0f} | {many.p50_ms:.2f}/{many.p99_ms:.2f} | "
            f"{ratio(one.requests_per_second, ours[1].requests_per_second)} | "
            f"{ratio(many.requests_per_second, ours[32].requests_per_second)} |"
        )
    lines += [
        "",
        "### 64 MiB upload by the handler's read size: seconds (ratio to native)",
        "",
        "| variant | " + " | ".join(f"{r // 1024} KiB reads" for r in read_sizes) + " |",
        "|---|" + "---|" * len(read_sizes),
    ]
    for variant, times in by_read_size.items():
        cells = [f"{t:.3f} ({ratio(t, n)})" for t, n in zip(times, by_read_size["native"], strict=True)]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Slow client downloading a 256 MiB stream: server peak RSS growth",
        "",
        "| variant | MiB |",
        "|---|---|",
    ]
    lines += [f"| {variant} | {growth:.1f} |" for variant, growth in download_rows.items()]
    lines += ["", "### Whole servers: a small Flask GET through each, beside the peer", "", whole]
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "WSGI bridge", "bridge", run)
