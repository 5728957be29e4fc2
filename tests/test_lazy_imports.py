"""Start-up imports only what it uses: Alembic only when a migration is due, grpc only when OTLP/gRPC serves.

Each case runs in a fresh interpreter, so that what the test process already imported does not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.testing import free_port

ROOT = Path(__file__).resolve().parent.parent

START_UP = """
import json, sys
from fastapi.testclient import TestClient
from core.factory import create_app

with TestClient(create_app()) as client:
    assert client.get("/health").status_code == 200
print(json.dumps({name: name in sys.modules for name in ("alembic", "grpc")}))
"""


def start_up(data_dir: Path, **env: str) -> dict[str, bool]:
    """Start the app with every plugin in a new interpreter; which of alembic and grpc it imported."""
    environment = {**os.environ, "PLUGHOST_DATA_DIR": str(data_dir), **env}
    environment.pop("PLUGHOST_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", START_UP], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_alembic_is_imported_only_when_a_migration_is_due(tmp_path: Path) -> None:
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")["alembic"] is True  # a new database: every plugin migrates
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")["alembic"] is False  # at head already: nothing to do


def test_grpc_is_imported_only_when_otlp_grpc_serves(tmp_path: Path) -> None:
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")["grpc"] is False
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS=f"127.0.0.1:{free_port()}")["grpc"] is True
