import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from core.testing import free_port
from tests.readme import README, marked_blocks
from tests.servers import running_server


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = marked_blocks("test-command")[""].strip()
    ci_script = (README.parent / ".ci" / "run").read_text().splitlines()
    assert command in ci_script


def test_readme_install_command_runs_the_server(tmp_path: Path) -> None:
    """The README's install line ends in a serve command; with the package installed (as here), that
    command starts the server with every plugin and ``/health`` answers."""
    install = next(line for line in README.read_text().splitlines() if "pip install -e . && " in line)
    serve = install.rsplit("&&", 1)[1].split()
    assert serve == ["python", "-m", "core", "serve"]  # what running_server starts, plus a free port
    with running_server(env={"PLUGHOST_DATA_DIR": str(tmp_path)}) as base:
        health = httpx.get(f"{base}/health")
    assert health.status_code == 200, health.text


def test_readme_plugin_example_is_complete() -> None:
    files = marked_blocks("file")
    assert set(files) == {"pyproject.toml", "hello_plugin/__init__.py"}
    assert 'hello = "hello_plugin"' in files["pyproject.toml"]
    compile(files["hello_plugin/__init__.py"], "hello_plugin/__init__.py", "exec")


def readme_address(code: str, ports: dict[str, int]) -> str:
    """A README snippet with its example ports (HTTP 5000, gRPC 4317, llmock 9100) made free ones, in one pass:
    replaced one after another, a free port that holds another's example (54317) was rewritten again."""
    examples = re.compile(r"\b(" + "|".join(map(re.escape, ports)) + r")\b")
    return examples.sub(lambda found: str(ports[found.group()]), code)


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"exited with {process.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.1)


def environment_of(command: str) -> dict[str, str]:
    """The ``NAME=value`` assignments before ``python -m core serve`` in a README command."""
    *assignments, rest = command.strip().split(" python ")
    assert rest == "-m core serve", command
    return dict(item.split("=", 1) for item in " ".join(assignments).split())


def test_getting_started_from_nothing_to_a_first_trace_and_a_first_gateway_call(tmp_path: Path) -> None:
    """Every "Getting started" snippet, run as a user runs them: the server with both ports moved
    and private providers allowed, llmock, the first traces over HTTP and gRPC, the gateway calls,
    an OpenInference app; the start-up log names the addresses."""
    blocks = marked_blocks("getting-started")
    ports = {"5000": free_port(), "4317": free_port(), "9100": free_port(), "8080": 0, "14317": 0}
    moved = environment_of(blocks["ports"])
    assert set(moved) == {"PLUGHOST_PORT", "PLUGHOST_OTEL_GRPC_ADDRESS"}
    assert environment_of(blocks["serve-private"]) == {"PLUGHOST_GATEWAY_ALLOW_PRIVATE": "1"}
    environment = {
        **os.environ,
        "PLUGHOST_DATA_DIR": str(tmp_path / "data"),
        "PLUGHOST_PORT": str(ports["5000"]),
        "PLUGHOST_OTEL_GRPC_ADDRESS": f"127.0.0.1:{ports['4317']}",
        "PLUGHOST_GATEWAY_ALLOW_PRIVATE": "1",
    }
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{ports['5000']}"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "core", "serve"], env=environment, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        provider = subprocess.Popen(
            readme_address(blocks["provider"], ports).split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(ports["9100"], provider)
            wait_for_port(ports["5000"], server)
            started = log.read_text()
            assert f"Console:   {base}/" in started
            assert f"OTLP/HTTP: {base}/v1/traces" in started
            assert f"OTLP/gRPC: 127.0.0.1:{ports['4317']}" in started

            for name in ("trace-http", "trace-grpc"):
                subprocess.run([sys.executable, "-c", readme_address(blocks[name], ports)], check=True, timeout=120)
            calls = subprocess.run(
                ["sh", "-c", readme_address(blocks["gateway"], ports)], check=True, capture_output=True, text=True
            )
            assert '"object":"chat.completion"' in calls.stdout and "Hello!" in calls.stdout.rsplit("choices", 1)[1]
            app = subprocess.run(
                [sys.executable, "-c", readme_address(blocks["openinference"], ports)],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert "Hi!" in app.stdout  # llmock repeats the question in its answer

            deadline = time.monotonic() + 60
            while True:  # the gateway stores its own traces in the background
                found = httpx.get(f"{base}/api/otel/traces", params={"limit": 100}).json()["traces"]
                services = {trace["service_name"] for trace in found}
                if {"hello", "hello-grpc", "chat-app"} <= services:
                    break
                assert time.monotonic() < deadline, services
                time.sleep(0.2)
            query = {"service": "chat-app", "model": "gpt-4o-mini"}  # OpenInference's spans, read as an LLM call
            chat = httpx.get(f"{base}/api/otel/traces", params=query).json()["traces"]
            assert [trace["llm_calls"] for trace in chat] == [1]
        finally:
            for process in (provider, server):
                process.terminate()
                process.wait(30)
