"""The peer measured beside plughost: MLflow's tracking server, whose FastAPI app wraps its Flask app as ours does.

MLflow's pins clash with plughost's, so it lives in its own virtual environment, made on first use
under ``benchmarks/.peers/mlflow`` (git-ignored). Its server runs as a subprocess: one uvicorn worker
(as every server in these benchmarks), a SQLite backend store in a temporary directory.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.harness import Server, free_port, server

MLFLOW_REQUIREMENT = "mlflow>=3.5,<4"
MLFLOW_VENV = Path(__file__).with_name(".peers") / "mlflow"
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
"""No usage reports over the network while it is measured."""
MLFLOW_EXPERIMENT = {"x-mlflow-experiment-id": "0"}
"""The header MLflow's OTLP endpoint needs: the experiment the spans go to (0, the default one)."""
MLFLOW_START_TIMEOUT = 300.0
"""Seconds MLflow may take to answer: it imports far more than plughost, and the machine is shared."""


def mlflow_bin(name: str) -> Path:
    """A program of MLflow's environment (``mlflow``, ``python``), installing MLflow first if needed."""
    program = MLFLOW_VENV / "bin" / name
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        print(f"  installing {MLFLOW_REQUIREMENT} into {MLFLOW_VENV} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", MLFLOW_REQUIREMENT], check=True)
    return program


def mlflow_version() -> str:
    found = subprocess.run(
        [str(mlflow_bin("python")), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def mlflow_server_command(data_dir: str) -> tuple[list[str], int]:
    """The command that serves MLflow's tracking server (one worker, SQLite) on a free port, and the port."""
    port = free_port()
    return [
        str(mlflow_bin("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{data_dir}/mlflow.db",
        "--default-artifact-root",
        f"{data_dir}/artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ], port


@contextmanager
def mlflow_server() -> Iterator[Server]:
    """A running MLflow tracking server on a fresh SQLite store (its migrations run before it answers)."""
    with tempfile.TemporaryDirectory() as data_dir:
        command, port = mlflow_server_command(data_dir)
        with server(command, port, health="/health", env=MLFLOW_ENV, timeout=MLFLOW_START_TIMEOUT) as running:
            yield running
