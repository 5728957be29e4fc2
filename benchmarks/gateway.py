"""Gateway overhead benchmark: the same calls through the gateway and straight to the provider, in one run.

    python -m benchmarks.gateway [--quick] [--write]

The provider is the tests' fake provider (an OpenAI-compatible server on loopback,
answering at once), in its own process. The gateway is ``python -m core serve``
with the gateway alone, and with security, workspace and timing as well. Each
figure is the median of 100 calls over one keep-alive connection: unary, and
streamed (first token and whole answer). Overhead = gateway - direct. A bare
proxy (raw ASGI + aiohttp, no parsing) is measured too: the floor of a Python hop.
Target: < 2 ms median (the reference server adds 18-33 ms).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date

from benchmarks.harness import benchmark_main, free_port, plughost_server, server

PROVIDER = (
    "import sys, uvicorn; from plugins.gateway.tests.fake_provider import create_provider; "
    "uvicorn.run(create_provider()[0], host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')"
)
CHAT = {"model": "echo-bench", "messages": [{"role": "user", "content": "one two three four five"}]}


def timed_calls(port: int, path: str, body: dict[str, object], calls: int, stream: bool) -> tuple[list[float], list[float]]:
    """(time to first content, total time) of each call, over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    payload = json.dumps({**body, "stream": stream}).encode()
    firsts, totals = [], []
    for _ in range(calls):
        started = time.perf_counter()
        connection.request("POST", path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {response.read()[:300]!r}")
        first = None
        if stream:
            while line := response.readline():
                if first is None and b'"content":"' in line and b'"content":""' not in line:
                    first = time.perf_counter() - started
        else:
            response.read()
        totals.append(time.perf_counter() - started)
        firsts.append(first if first is not None else totals[-1])
    connection.close()
    return firsts, totals


def configure(port: int, provider_port: int) -> None:
    def post(path: str, body: dict[str, object]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 201:
            raise RuntimeError(f"{path}: {response.status} {response.read()!r}")
        connection.close()

    post("/api/gateway/secrets", {"name": "bench", "api_key": "sk-bench-0000000000", "base_url": f"http://127.0.0.1:{provider_port}/v1"})
    post("/api/gateway/models", {"name": "bench", "provider": "openai", "model": "echo-bench", "secret": "bench"})
    post("/api/gateway/endpoints", {"name": "bench", "models": [{"model": "bench"}]})


def run(quick: bool) -> str:
    calls = 30 if quick else 100
    provider_port, results = free_port(), {}
    median_ms: Callable[[list[float]], float] = lambda values: statistics.median(values) * 1000  # noqa: E731
    with server([sys.executable, "-c", PROVIDER, str(provider_port)], provider_port, health="/docs"):
        for mode in (False, True):
            timed_calls(provider_port, "/v1/chat/completions", CHAT, 20, mode)
            first, total = timed_calls(provider_port, "/v1/chat/completions", CHAT, calls, mode)
            results[("direct", mode)] = (median_ms(first), median_ms(total))
        proxy_port = free_port()
        proxy = [sys.executable, "-m", "benchmarks.bare_proxy", str(proxy_port), f"http://127.0.0.1:{provider_port}"]
        with server(proxy, proxy_port, health="/health"):
            timed_calls(proxy_port, "/v1/chat/completions", CHAT, 20, False)
            _, total = timed_calls(proxy_port, "/v1/chat/completions", CHAT, calls, False)
            bare_proxy_unary = median_ms(total)
        for label, plugins in (("gateway", "gateway"), ("gateway + security, workspace, timing", "gateway,security,workspace,timing")):
            with tempfile.TemporaryDirectory() as data_dir:
                command, port = plughost_server()
                env = {
                    "PLUGHOST_PLUGINS": plugins, "PLUGHOST_DATA_DIR": data_dir, "PLUGHOST_GATEWAY_ALLOW_PRIVATE": "1",
                    "PLUGHOST_GATEWAY_KEK": base64.b64encode(os.urandom(32)).decode(),
                }
                with server(command, port, health="/health", env=env):
                    configure(port, provider_port)
                    for mode in (False, True):
                        timed_calls(port, "/gateway/bench/invocations", CHAT, 20, mode)
                        first, total = timed_calls(port, "/gateway/bench/invocations", CHAT, calls, mode)
                        results[(label, mode)] = (median_ms(first), median_ms(total))
            print(f"  {label}: unary {results[(label, False)][1]:.2f} ms", file=sys.stderr)

    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}: medians of {calls} calls, "
        "one uvicorn worker, the fake provider in its own process. The bare proxy (`benchmarks/bare_proxy.py`: raw "
        "ASGI forwarding bytes over the same aiohttp session type, no parsing) is the floor of any Python hop here.",
        "",
        "| path | unary ms | overhead | over the bare proxy | stream first token ms | overhead | stream total ms | overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    direct_unary, (direct_first, direct_total) = results[("direct", False)][1], results[("direct", True)]
    lines.append(f"| bare proxy (floor) | {bare_proxy_unary:.2f} | {bare_proxy_unary - direct_unary:+.2f} | +0.00 | - | - | - | - |")
    for label in ("direct", "gateway", "gateway + security, workspace, timing"):
        unary, (first, total) = results[(label, False)][1], results[(label, True)]
        lines.append(
            f"| {label} | {unary:.2f} | {unary - direct_unary:+.2f} | {unary - bare_proxy_unary:+.2f} | {first:.2f} | "
            f"{first - direct_first:+.2f} | {total:.2f} | {total - direct_total:+.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "LLM gateway overhead", "gateway", run)
