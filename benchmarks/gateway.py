"""Gateway overhead benchmark: the same calls through the gateway and straight to the provider, in one run.

    python -m benchmarks.gateway [--quick] [--write]

The provider is the tests' fake provider (an OpenAI-compatible server on loopback,
answering at once), in its own process. The gateway is ``python -m core serve``
with the gateway alone (tracing off), with otel (every call traced), and with
otel, security, workspace and timing. The peers are the LiteLLM proxy in its fastest
documented set-up (no database, minimal logging, one uvicorn worker) and MLflow's AI
gateway (its tracking server, one worker, SQLite, the endpoint made through its REST
API, usage tracking on as by default). Every server runs through the whole run; in
each of 9 rounds each gets 50 calls per mode over one keep-alive connection, in turn, the order
turned by one each round, so that a minute's load falls on all of them alike. Each figure is the
median of its rounds' medians: unary, and streamed (first token and whole answer). Overhead =
gateway - direct, per round. The server's CPU per call (every thread: the trace export
included) is measured too. A bare proxy (raw ASGI + aiohttp, no parsing) is measured too: the
floor of a Python hop. Targets: overhead <= 1.0 ms unary and <= 1.2 ms streamed with tracing
on, ahead of the peers', and tracing on within 0.3 ms of off.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any

from benchmarks.harness import benchmark_main, free_port, plughost_server, server, tree_cpu
from benchmarks.peers import MLFLOW_ENV, MLFLOW_START_TIMEOUT, mlflow_server_command

PROVIDER = (
    "import sys, uvicorn; from plugins.gateway.tests.fake_provider import create_provider; "
    "uvicorn.run(create_provider()[0], host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')"
)
FIRST_CONTENT = re.compile(rb'"content": ?"[^"]')
CHAT: dict[str, object] = {"model": "echo-bench", "messages": [{"role": "user", "content": "one two three four five"}]}


def timed_calls(
    port: int, path: str, body: dict[str, object], calls: int, stream: bool
) -> tuple[list[float], list[float]]:
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
                if first is None and FIRST_CONTENT.search(line):
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

    post(
        "/api/gateway/secrets",
        {"name": "bench", "api_key": "sk-bench-0000000000", "base_url": f"http://127.0.0.1:{provider_port}/v1"},
    )
    post("/api/gateway/models", {"name": "bench", "provider": "openai", "model": "echo-bench", "secret": "bench"})
    post("/api/gateway/endpoints", {"name": "bench", "models": [{"model": "bench"}]})


MLFLOW_GATEWAY_ENV = {
    "MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS": "true",  # the fake provider is on loopback
    "MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES": "http,https",  # and speaks plain HTTP
}


def configure_mlflow(port: int, provider_port: int) -> None:
    """A secret (key and base URL), a model definition and an endpoint ``bench`` on MLflow's gateway,
    through its REST API: the set-up its documentation gives, usage tracking (a trace per call) left on."""

    def post(path: str, body: dict[str, object]) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", f"/api/3.0/mlflow/gateway/{path}", json.dumps(body).encode(), JSON)
        response = connection.getresponse()
        answer = response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"MLflow {path}: {response.status} {answer[:300]!r}")
        found: dict[str, Any] = json.loads(answer)
        return found

    secret = post(
        "secrets/create",
        {
            "secret_name": "bench",
            "secret_value": {"api_key": "sk-bench-0000000000"},
            "provider": "openai",
            "auth_config": {"api_base": f"http://127.0.0.1:{provider_port}/v1"},
        },
    )["secret"]["secret_id"]
    model = post(
        "model-definitions/create",
        {"name": "bench", "secret_id": secret, "provider": "openai", "model_name": "echo-bench"},
    )["model_definition"]["model_definition_id"]
    post(
        "endpoints/create",
        {"name": "bench", "model_configs": [{"model_definition_id": model, "linkage_type": "PRIMARY", "weight": 1.0}]},
    )


LITELLM_CONFIG = """model_list:
  - model_name: bench
    litellm_params:
      model: openai/echo-bench
      api_base: http://127.0.0.1:{port}/v1
      api_key: sk-bench-0000000000
litellm_settings:
  set_verbose: False
  telemetry: False
"""
MLFLOW = "MLflow AI gateway (tracking server, usage tracking on)"
JSON = {"Content-Type": "application/json"}
PLUGHOST_SETUPS = (
    ("plughost gateway, tracing off", "gateway", "0"),
    ("plughost gateway + otel, tracing on", "gateway,otel", "1"),
    ("plughost gateway + otel, security, workspace, timing, tracing on", "gateway,otel,security,workspace,timing", "1"),
)


Figures = dict[bool, tuple[float, float, float]]
"""{stream: (median first-token ms, median total ms, server CPU ms per call)}."""


@dataclass
class Target:
    """One server measured: where its calls go, and its process (for its CPU)."""

    label: str
    port: int
    path: str
    body: dict[str, object]
    pid: int
    modes: tuple[bool, ...] = (False, True)


def measure(target: Target, calls: int) -> Figures:
    """One round of ``calls`` calls per mode: medians of the calls' times, and the server tree's CPU per call
    (every thread's: the trace export in the background included, which a median of times leaves out)."""
    found = {}
    for stream in target.modes:
        cpu = tree_cpu(target.pid)
        first, total = timed_calls(target.port, target.path, target.body, calls, stream)
        cpu = (tree_cpu(target.pid) - cpu) / calls
        found[stream] = (statistics.median(first) * 1000, statistics.median(total) * 1000, cpu * 1000)
    return found


def measure_rounds(targets: list[Target], calls: int, rounds: int) -> dict[str, Figures]:
    """Every target warmed up, then ``rounds`` rounds each measuring every target in turn, the order turned by
    one each round (no target always right after the same other, none always first); per target and figure,
    the median of its rounds' figures. Overheads are taken per round, against the round's own direct calls
    (:func:`overheads`): a minute's slowdown moves both."""
    for target in targets:
        ready(target.port, target.path, target.body)
        for stream in target.modes:
            timed_calls(target.port, target.path, target.body, 20, stream)
    measured: dict[str, list[Figures]] = {target.label: [] for target in targets}
    for turn in range(rounds):
        for target in targets[turn % len(targets) :] + targets[: turn % len(targets)]:
            measured[target.label].append(measure(target, calls))
    return {label: _median_figures(found) for label, found in measured.items()} | {
        f"{OVERHEAD}{label}": _median_figures([_minus(r, d) for r, d in zip(found, measured["direct"], strict=True)])
        for label, found in measured.items()
    }


OVERHEAD = "overhead of "


def _minus(figures: Figures, direct: Figures) -> Figures:
    return {mode: tuple(a - b for a, b in zip(found, direct[mode], strict=True)) for mode, found in figures.items()}  # type: ignore[misc]


def _median_figures(rounds: list[Figures]) -> Figures:
    """The median of the rounds' times; their CPU's mean (the total over the calls: CPU adds up, and the
    kernel counts it in 10 ms ticks, too coarse for one round's)."""
    return {
        mode: (
            statistics.median(r[mode][0] for r in rounds),
            statistics.median(r[mode][1] for r in rounds),
            statistics.fmean(r[mode][2] for r in rounds),
        )
        for mode in rounds[0]
    }


def ready(port: int, path: str, body: dict[str, object], timeout: float = 30.0) -> None:
    """Wait until the server answers a call (LiteLLM reports healthy before it serves calls)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            timed_calls(port, path, body, 1, False)
            return
        except (ConnectionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(quick: bool) -> str:
    calls, rounds = (20, 3) if quick else (50, 9)
    provider_port = free_port()
    via_gateway = {**CHAT, "model": "bench"}
    chat = "/gateway/v1/chat/completions"
    with ExitStack() as running:
        provider = running.enter_context(
            server([sys.executable, "-c", PROVIDER, str(provider_port)], provider_port, health="/docs", timeout=120)
        )
        targets = [Target("direct", provider_port, "/v1/chat/completions", CHAT, provider.pid)]
        proxy_port = free_port()
        proxy = [sys.executable, "-m", "benchmarks.bare_proxy", str(proxy_port), f"http://127.0.0.1:{provider_port}"]
        started = running.enter_context(server(proxy, proxy_port, health="/health"))
        targets.append(
            Target("bare proxy (floor)", proxy_port, "/v1/chat/completions", CHAT, started.pid, (False,))
        )  # it buffers streams
        for label, plugins, tracing in PLUGHOST_SETUPS:
            data_dir = running.enter_context(tempfile.TemporaryDirectory())
            command, port = plughost_server()
            env = {
                "PLUGHOST_PLUGINS": plugins,
                "PLUGHOST_DATA_DIR": data_dir,
                "PLUGHOST_GATEWAY_ALLOW_PRIVATE": "1",
                "PLUGHOST_GATEWAY_KEK": base64.b64encode(os.urandom(32)).decode(),
                "PLUGHOST_GATEWAY_TRACING": tracing,
            }
            started = running.enter_context(server(command, port, health="/health", env=env))
            configure(port, provider_port)
            targets.append(Target(label, port, chat, via_gateway, started.pid))
        config = running.enter_context(tempfile.NamedTemporaryFile("w", suffix=".yaml"))
        config.write(LITELLM_CONFIG.format(port=provider_port))
        config.flush()
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "litellm.proxy.proxy_cli",
            "--config",
            config.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]
        env = {"LITELLM_LOG": "ERROR", "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}
        started = running.enter_context(server(command, port, health="/health/liveliness", timeout=120, env=env))
        targets.append(Target("LiteLLM proxy", port, "/v1/chat/completions", via_gateway, started.pid))
        data_dir = running.enter_context(tempfile.TemporaryDirectory())
        command, port = mlflow_server_command(data_dir)
        env = {**MLFLOW_ENV, **MLFLOW_GATEWAY_ENV}
        started = running.enter_context(server(command, port, health="/health", env=env, timeout=MLFLOW_START_TIMEOUT))
        configure_mlflow(port, provider_port)
        targets.append(Target(MLFLOW, port, "/gateway/mlflow/v1/chat/completions", via_gateway, started.pid))
        results = measure_rounds(targets, calls, rounds)
    for target in targets[1:]:
        print(f"  {target.label}: unary overhead {results[OVERHEAD + target.label][False][1]:+.2f} ms", file=sys.stderr)
    return report(results, [target.label for target in targets], calls, rounds)


def report(results: dict[str, Figures], labels: list[str], calls: int, rounds: int) -> str:
    litellm = results[OVERHEAD + "LiteLLM proxy"]
    lines = [
        f"Measured {date.today()} on {platform.machine()} Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end: {rounds} rounds, each of {calls} calls per server and mode over one "
        "keep-alive connection, the servers in turn (the order turned by one each round); each figure is the "
        "median of its rounds' medians, each overhead the median of its rounds' (through the server - direct, "
        "in the same round). One uvicorn worker each, the fake provider (OpenAI format, answering at once) in "
        "its own process, every server running through the whole run. "
        "plughost is called on `/gateway/v1/chat/completions`, LiteLLM on `/v1/chat/completions` (`litellm[proxy]`, "
        "no database, `LITELLM_LOG=ERROR`, no master key, one worker: its fastest documented set-up), "
        "MLflow's gateway on `/gateway/mlflow/v1/chat/completions` (its tracking server, one worker, SQLite; "
        "secret, model definition and endpoint made through its REST API, usage tracking on: the default). "
        "The bare proxy (`benchmarks/bare_proxy.py`: raw ASGI forwarding bytes over aiohttp, no parsing) "
        "is the floor of any Python hop (unary only: it buffers streams). The ratio is LiteLLM's overhead over "
        "this row's. CPU: the server's (all its threads and children) per call, background work included "
        "(the trace export): what a median of times leaves out.",
        "",
        "| path | unary ms | overhead | LiteLLM / this | stream first token ms | overhead "
        "| stream total ms | overhead | LiteLLM / this | CPU ms/call unary / stream |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label in labels:
        found, overhead = results[label], results[OVERHEAD + label]
        unary = overhead[False][1]
        unary_ratio = f"{litellm[False][1] / unary:.1f}x" if label != "direct" and unary > 0 else "-"
        if True not in found:
            lines.append(
                f"| {label} | {found[False][1]:.2f} | {unary:+.2f} | {unary_ratio} | - | - | - | - | - "
                f"| {found[False][2]:.2f} / - |"
            )
            continue
        stream_first, stream_total = overhead[True][0], overhead[True][1]
        stream_ratio = f"{litellm[True][1] / stream_total:.1f}x" if label != "direct" and stream_total > 0 else "-"
        lines.append(
            f"| {label} | {found[False][1]:.2f} | {unary:+.2f} | {unary_ratio} | {found[True][0]:.2f} "
            f"| {stream_first:+.2f} | {found[True][1]:.2f} | {stream_total:+.2f} | {stream_ratio} "
            f"| {found[False][2]:.2f} / {found[True][2]:.2f} |"
        )
    off, on = results[OVERHEAD + PLUGHOST_SETUPS[0][0]], results[OVERHEAD + PLUGHOST_SETUPS[1][0]]
    lines += [
        "",
        f"Tracing on - off (median): unary {on[False][1] - off[False][1]:+.2f} ms, "
        f"stream total {on[True][1] - off[True][1]:+.2f} ms (target: within 0.3 ms); "
        f"CPU per streamed call {on[True][2] - off[True][2]:+.2f} ms.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "LLM gateway overhead", "gateway", run)
