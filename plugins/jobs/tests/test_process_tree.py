"""Whole-tree kills: nothing a job started outlives it, whether it stayed in the job's process group
or daemonized out of it.

Each check runs right after the job is reported finished, without waiting: the
outcome is recorded only once the worker's tree is dead and reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from core.database import create_engine
from core.testing import client_for
from plugins.jobs.pool import ProcessPool
from plugins.jobs.reaper import children
from plugins.jobs.store import jobs

from . import jobtypes
from .conftest import FAST, ROOT, alive, process_gone, spawned, submit, wait_for


@pytest.mark.parametrize("daemonize", [False, True], ids=["child", "double-fork"])
def test_a_timeout_kills_every_process_the_job_started(
    sqlite_shared_jobs_client: Any, tmp_path: Path, daemonize: bool
) -> None:
    client = sqlite_shared_jobs_client
    marker = tmp_path / "spawned"
    job = submit(client, "test.spawn", params={"marker": str(marker), "daemonize": daemonize}, timeout_seconds=1)
    job_pid, program = spawned(marker)
    assert alive(program)
    if daemonize:
        assert os.getpgid(program) != os.getpgid(job_pid), "the daemon did not leave the job's process group"
    assert wait_for(client, job["id"])["status"] == "TIMEOUT"
    assert not alive(job_pid) and not alive(program), "a process outlived its TIMEOUT job"


@pytest.mark.parametrize("daemonize", [False, True], ids=["child", "double-fork"])
def test_a_cancel_kills_every_process_the_job_started(
    sqlite_shared_jobs_client: Any, tmp_path: Path, daemonize: bool
) -> None:
    client = sqlite_shared_jobs_client
    marker = tmp_path / "spawned"
    job = submit(client, "test.spawn", params={"marker": str(marker), "daemonize": daemonize})
    job_pid, program = spawned(marker)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    assert wait_for(client, job["id"], timeout=60)["status"] == "CANCELED"  # the job would sleep 300 s
    assert not alive(job_pid) and not alive(program), "a process outlived its CANCELED job"
    assert wait_for(client, submit(client, "test.echo")["id"])["status"] == "SUCCEEDED", (
        "a worker replaced the killed one"
    )


def test_a_job_that_succeeds_leaves_no_daemon_behind(sqlite_shared_jobs_client: Any, tmp_path: Path) -> None:
    client = sqlite_shared_jobs_client
    marker = tmp_path / "spawned"
    job = wait_for(
        client, submit(client, "test.spawn", params={"marker": str(marker), "daemonize": True, "seconds": 0})["id"]
    )
    assert job["status"] == "SUCCEEDED"
    _, program = spawned(marker)
    assert job["result"] == {"program": program}
    assert not alive(program), "the daemon the job started outlived it"


def test_shutdown_kills_the_whole_tree_of_a_running_job(make_app: Any, sqlite_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    settings = {"database_url": sqlite_url, "jobs": {**FAST, "shutdown_grace_seconds": 0.2}}
    with client_for(make_app(["jobs", "workspace", jobtypes], settings)) as client:
        submit(client, "test.spawn", params={"marker": str(marker), "daemonize": True})
        job_pid, program = spawned(marker)
    assert not alive(job_pid) and not alive(program), "a process outlived the server's shutdown"


def forkservers() -> set[int]:
    """This test process's fork servers (the app runs in-process, so they are its children)."""
    found = set()
    for pid in children():
        with contextlib.suppress(OSError):
            if b"plugins.jobs.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


def test_no_process_runs_until_a_job_does_and_idle_workers_exit(sqlite_jobs_client: Any) -> None:
    before = forkservers()
    client = sqlite_jobs_client(workers=2, idle_seconds=0.3)
    assert client.get("/api/jobs/types").status_code == 200
    assert forkservers() == before, "a job process started with no job to run"
    job = wait_for(client, submit(client, "test.echo")["id"])
    worker, fork_server = job["result"]["pid"], job["result"]["parent"]
    # Read by the job itself: the idle fork server may be gone by the time the answer reaches the test.
    assert "plugins.jobs.forkserver" in job["result"]["parent_command"] and fork_server not in before, (
        "the job's worker was not forked from a new fork server"
    )
    assert process_gone(worker) and process_gone(fork_server), "the idle worker and fork server did not exit"
    again = wait_for(client, submit(client, "test.echo")["id"])
    assert again["status"] == "SUCCEEDED" and again["result"]["pid"] != worker, "no worker started for a new job"


def test_a_lost_lease_kills_every_process_the_job_started(jobs_client: Any, database_url: str, tmp_path: Path) -> None:
    """Another worker took the job over (its lease was renewed by someone else): this one must stop it, tree and all."""
    client = jobs_client()
    marker = tmp_path / "spawned"
    job = submit(client, "test.spawn", params={"marker": str(marker), "daemonize": True})
    job_pid, program = spawned(marker)

    async def steal() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(update(jobs).where(jobs.c.id == job["id"]).values(lease_owner="another-worker"))
        await engine.dispose()

    asyncio.run(steal())
    assert process_gone(job_pid) and process_gone(program), "a job that lost its lease ran on"
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "RUNNING", (
        "the outcome of a lost lease must not be recorded"
    )


def test_the_fork_server_exits_at_shutdown_without_running_the_job_modules_exit_handlers() -> None:
    """Shutdown waits for the fork server; a preloaded module's slow teardown (here an exit handler that
    sleeps a minute) must not hold it: the fork server ends on its own, not killed after the wait ran out."""

    async def run_one_job_then_close() -> int | None:
        pool = ProcessPool(1, ["plugins.jobs.tests.slow_exit"], max_reply_bytes=1024, idle_seconds=60)
        async with pool.lend() as process:
            await process.run(ECHO_JOB, 30, asyncio.Event(), lambda *_: None, lambda _: None)
        server = pool.server.process
        assert server is not None and server.returncode is None, "the job ran without a fork server"
        await pool.close()
        return server.returncode

    assert asyncio.run(run_one_job_then_close()) == 0, "the fork server was killed instead of exiting"


ECHO_JOB = {
    "id": "0" * 32,
    "type": "test.echo",
    "function": "plugins.jobs.tests.jobtypes:echo",
    "parameters": "plugins.jobs.tests.jobtypes:Echo",
    "params": {},
    "workspace": "default",
    "attempt": 1,
    "data_dir": "/nonexistent",
    "artifacts_dir": "/nonexistent",
    "database_url": "sqlite://",
    "max_result_bytes": 1024,
}
"""The message a dispatcher sends a worker for one ``test.echo`` job."""


def test_the_fork_server_loads_no_web_framework() -> None:
    """What a fork server imports before its first fork (its own modules, the job worker's and a job
    module of this plugin) leaves out FastAPI, Starlette, Flask, SQLAlchemy and click: the plugin's hooks
    import what they serve when called. Each new fork server (the first job after an idle spell) saves
    that CPU."""
    heavy = ("fastapi", "starlette", "flask", "sqlalchemy", "click")
    code = (
        "import importlib, json, sys\n"
        "for module in ('plugins.jobs.forkserver', 'plugins.jobs.child', 'plugins.jobs.tests.jobtypes'):\n"
        "    importlib.import_module(module)\n"
        f"print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
