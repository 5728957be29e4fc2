"""Start-up imports only what it uses: Alembic only when a migration is due, grpc only when OTLP/gRPC serves,
aiohttp only on the gateway's first provider call, logfire not for pydantic's plugin, PostgreSQL's dialect
not on SQLite, packaging only for a plugin that names the plughost versions it supports, argon2 only with the
first password; the cyclic GC, paused while the server starts (:mod:`core.startup`), is on again once the app
has started.

Each case runs in a fresh interpreter, so that what the test process already imported does not count.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from core.startup import PLUGINS_VARIABLE
from core.testing import free_port

ROOT = Path(__file__).resolve().parent.parent

START_UP = """
import gc, json, sys
from core import startup

startup.prepare()  # as python -m core does first
from fastapi.testclient import TestClient
from core.factory import create_app

with TestClient(create_app()) as client:
    assert client.get("/health").status_code == 200
    modules = ("alembic", "grpc", "aiohttp", "logfire", "sqlalchemy.dialects.postgresql", "packaging", "argon2")
    found = {name: name in sys.modules for name in modules}
    print(json.dumps({**found, "collecting": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}))
"""


def start_up(data_dir: Path, **env: str) -> dict[str, bool]:
    """Start the app with every plugin in a new interpreter; which of alembic, grpc, aiohttp, logfire,
    PostgreSQL's dialect, packaging and argon2 it imported, whether the cyclic GC is on and start-up's objects
    frozen."""
    environment = {**os.environ, "PLUGHOST_DATA_DIR": str(data_dir), **env}
    environment.pop("PLUGHOST_DATABASE_URL", None)
    environment.pop(PLUGINS_VARIABLE, None)  # as an operator's: the server leaves logfire's plugin out itself
    done = subprocess.run(
        [sys.executable, "-c", START_UP], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_alembic_is_imported_only_when_a_migration_is_due(tmp_path: Path) -> None:
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")["alembic"] is True  # a new database: every plugin migrates
    at_head = start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")  # nothing to do
    assert at_head["alembic"] is False
    assert at_head["sqlalchemy.dialects.postgresql"] is False  # on SQLite (the migrations import it)


def test_grpc_is_imported_only_when_otlp_grpc_serves(tmp_path: Path) -> None:
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")["grpc"] is False
    assert start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS=f"127.0.0.1:{free_port()}")["grpc"] is True


def test_aiohttp_logfire_packaging_and_argon2_wait_and_the_collector_is_back_on_once_started(tmp_path: Path) -> None:
    found = start_up(tmp_path, PLUGHOST_OTEL_GRPC_ADDRESS="")
    assert found["aiohttp"] is False and found["logfire"] is False
    assert found["packaging"] is False and found["argon2"] is False
    assert found["collecting"] is True and found["frozen"] is True


def test_every_public_name_of_core_is_imported_on_first_use() -> None:
    import core

    assert sorted(core.__all__) == sorted(core._EXPORTS)  # the names mypy and readers see are the ones served
    for name in core.__all__:
        assert getattr(core, name) is getattr(importlib.import_module(f"core.{core._EXPORTS[name]}"), name)
