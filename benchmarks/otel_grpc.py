"""OTLP ingest over gRPC against OTLP/HTTP, in the same run: 200 requests of one 50-span trace each,
at concurrency 1 and 8, on the embedded SQLite.

    python -m benchmarks.otel_grpc [--quick] [--write]

Each measurement gets a fresh ``python -m core serve`` (otel plugin only, one worker).
HTTP requests go through the benchmarks' minimal asyncio client; gRPC calls through
grpc's asyncio client, one channel (one connection) per concurrent exporter, with the
request already serialised. Every span is counted back through the query API.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import sys
import tempfile
import time
from datetime import date

import grpc
from grpc import aio

from benchmarks.harness import benchmark_main, free_port, plughost_server, post_many, server, tree_cpu
from benchmarks.otel import PROTOBUF, SPANS_PER_TRACE, count_back, payload

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


async def export_many(target: str, bodies: list[bytes], concurrency: int) -> list[float]:
    """Call Export with every body over ``concurrency`` channels; return each latency in seconds."""
    pending = iter(bodies)
    latencies: list[float] = []

    async def exporter() -> None:
        async with aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            export = channel.unary_unary(EXPORT)
            for body in pending:
                started = time.perf_counter()
                await export(body, timeout=60)
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(exporter() for _ in range(concurrency)))
    return latencies


def measure(transport: str, concurrency: int, requests: int) -> dict[str, float]:
    bodies = [payload(index) for index in range(requests)]
    warm_up = [payload(10_000 + index) for index in range(10)]
    grpc_port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "PLUGHOST_PLUGINS": "otel",
            "PLUGHOST_DATA_DIR": data_dir,
            "PLUGHOST_OTEL_GRPC_ADDRESS": f"127.0.0.1:{grpc_port}",
        }
        command, port = plughost_server()
        with server(command, port, health="/health", env=env) as running:

            async def send(batch: list[bytes], concurrency: int) -> list[float]:
                if transport == "grpc":
                    return await export_many(f"127.0.0.1:{grpc_port}", batch, concurrency)
                return await post_many(port, "/v1/traces", batch, concurrency, PROTOBUF)

            asyncio.run(send(warm_up, 2))
            # the clients run in this process: its CPU is theirs
            server_cpu, client_cpu, started = tree_cpu(running.pid), time.process_time(), time.perf_counter()
            latencies = asyncio.run(send(bodies, concurrency))
            elapsed = time.perf_counter() - started
            server_cpu, client_cpu = tree_cpu(running.pid) - server_cpu, time.process_time() - client_cpu
            stored = count_back(f"http://127.0.0.1:{port}") - len(warm_up) * SPANS_PER_TRACE
    sent = requests * SPANS_PER_TRACE
    if stored != sent:
        raise RuntimeError(f"{transport}: sent {sent} spans, {stored} came back")
    latencies.sort()
    return {
        "spans_per_second": sent / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "server_us_per_span": server_cpu / sent * 1e6,
        "client_us_per_span": client_cpu / sent * 1e6,
    }


def run(quick: bool) -> str:
    requests = 50 if quick else 200
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}: {requests} requests of one {SPANS_PER_TRACE}-span trace (protobuf), "
        "one uvicorn worker, SQLite; "
        "every span counted back. The clients share the machine's two cores with the server, and grpc's client "
        "costs more CPU than the raw HTTP client: the server's CPU per span is the transports' own cost.",
        "",
        "| concurrency | transport | spans/s | p50 ms | p99 ms | server CPU us/span | client CPU us/span "
        "| spans/s vs OTLP/HTTP | server CPU vs OTLP/HTTP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for concurrency in (1, 8):
        http = measure("http", concurrency, requests)
        over_grpc = measure("grpc", concurrency, requests)
        for transport, result in (("OTLP/HTTP", http), ("OTLP/gRPC", over_grpc)):
            print(f"  c={concurrency} {transport}: {result['spans_per_second']:.0f} spans/s", file=sys.stderr)
            lines.append(
                f"| {concurrency} | {transport} | {result['spans_per_second']:.0f} | {result['p50_ms']:.1f} | "
                f"{result['p99_ms']:.1f} | {result['server_us_per_span']:.1f} | {result['client_us_per_span']:.1f} | "
                f"{result['spans_per_second'] / http['spans_per_second']:.2f}x | "
                f"{result['server_us_per_span'] / http['server_us_per_span']:.2f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "OTLP ingest: gRPC against HTTP", "otel-grpc", run)
