from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.testing import client_for

from . import jobtypes

FAST = {"heartbeat_seconds": 0.2, "lease_seconds": 10.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}
"""Short polls and heartbeats so cancels and shutdowns happen within a test's patience; a lease (10 s)
that a loaded machine never loses by a late heartbeat. A test of recovery waits for the lease to expire."""

FINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"}

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def start_jobs(make_app: Callable[..., Any], register_plugin: Callable[..., object]) -> Iterator[Callable[..., Any]]:
    """``start_jobs(database_url, **jobs_settings)``: a started TestClient on jobs + workspace + the test job types."""
    register_plugin(jobtypes)
    started: list[Any] = []

    def start(database_url: str, **settings: Any) -> Any:
        app = make_app(["jobs", "workspace", jobtypes], {"database_url": database_url, "jobs": {**FAST, **settings}})
        client = client_for(app)
        started.append(client)
        return client.__enter__()

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)


@pytest.fixture
def jobs_client(database_url: str, start_jobs: Callable[..., Any]) -> Callable[..., Any]:
    """``jobs_client(**jobs_settings)``: :func:`start_jobs` on this test's database (SQLite, then PostgreSQL)."""
    return lambda **settings: start_jobs(database_url, **settings)


@pytest.fixture
def sqlite_jobs_client(sqlite_url: str, start_jobs: Callable[..., Any]) -> Callable[..., Any]:
    """``jobs_client`` on SQLite only: for what the job's processes do, which no store changes (the store's
    part of a timeout, a cancel or a result runs on both stores in ``test_running`` and ``test_queue``)."""
    return lambda **settings: start_jobs(sqlite_url, **settings)


@pytest.fixture(scope="module")
def shared_jobs_apps(
    module_make_app: Callable[..., Any], module_databases: Callable[[str], str]
) -> Iterator[Callable[[str], Any]]:
    """``shared(store)``: a started TestClient on jobs + workspace + the test job types with the ``FAST``
    settings, on a database of ``store`` (``sqlite`` or ``postgresql``), started on first use and shared by
    the module's tests: each saves an app's start and a fork server's (its imports: about 1.5 s of CPU)."""
    with contextlib.ExitStack() as stack:
        started: dict[str, Any] = {}

        def shared(store: str) -> Any:
            if store not in started:
                settings = {"database_url": module_databases(store), "jobs": FAST}
                app = module_make_app(["jobs", "workspace", jobtypes], settings)
                started[store] = stack.enter_context(client_for(app))
            return started[store]

        yield shared


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_jobs_client(request: pytest.FixtureRequest, shared_jobs_apps: Callable[[str], Any]) -> Any:
    """A started jobs app on each store (the test runs once per store), shared with the module's other tests
    (:func:`shared_jobs_apps`): for a test that reads only the jobs it submitted, by id, and waits for them
    to end. A test that changes settings, lists jobs, or stops the app starts its own (``jobs_client``)."""
    return shared_jobs_apps(request.param)


@pytest.fixture
def sqlite_shared_jobs_client(shared_jobs_apps: Callable[[str], Any]) -> Any:
    """``shared_jobs_client`` on SQLite only (see ``sqlite_jobs_client``)."""
    return shared_jobs_apps("sqlite")


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[[str, int], subprocess.Popen[bytes]]]:
    """``start(database_url, concurrency)``: a worker process on that database (killed at the end)."""
    started_workers: list[subprocess.Popen[bytes]] = []

    def start(database_url: str, concurrency: int) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(started_workers)}.log", "wb")  # noqa: SIM115 - the process owns it
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "plugins.jobs.tests.worker_process",
                database_url,
                str(tmp_path / "data"),
                str(concurrency),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started_workers.append(worker)
        return worker

    yield start
    for worker in started_workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait()


def wait_for(
    client: Any, job_id: str, states: set[str] = FINAL, timeout: float = 60.0, **headers: str
) -> dict[str, Any]:
    """Poll ``GET /api/jobs/{id}`` until the job is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} still {job['status']} after {timeout} s, wanted {sorted(states)}: {job}"
            )
        time.sleep(0.05)


def submit(client: Any, type: str, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    response = client.post("/api/jobs", json={"type": type, **body}, headers=headers or {})
    assert response.status_code == 202, response.text
    return response.json()


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts: nobody reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def process_gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def started(marker: Path, within: float = 60.0) -> int:
    deadline = time.monotonic() + within
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    return int(marker.read_text().split()[0])


def spawned(marker: Path, within: float = 60.0) -> tuple[int, int]:
    """``(job pid, program pid)`` written by ``test.spawn``."""
    started(marker, within)
    job, program = map(int, marker.read_text().split())
    return job, program
