"""The queue under concurrency: atomic claims, worker processes sharing it, recovery after kill -9, the CLI."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from core.database import create_engine, migrate
from plugins.jobs.reaper import children
from plugins.jobs.service import MIGRATIONS
from plugins.jobs.store import JobStore, Submission

from .conftest import ROOT, process_gone, started, submit, wait_for

JOBS_SHARED = 80
"""Jobs two worker processes share: enough that both take some and a job run twice would show."""


async def race_for_jobs(database_url: str, jobs: int, claimers: int) -> list[list[str]]:
    """``claimers`` separate engines (as separate processes would have) claim one job each, all at once."""
    setup = create_engine(database_url)
    await migrate(setup, MIGRATIONS, "jobs")
    store = JobStore(setup)
    for _ in range(jobs):
        await store.submit(Submission("test.echo", {}, 10.0, 1, True))
    engines = [create_engine(database_url) for _ in range(claimers)]
    try:
        for engine in engines:  # open every connection first, so the claims start together
            async with engine.connect():
                pass
        claims = await asyncio.gather(
            *(JobStore(engine).claim(f"claimer-{n}", {"test.echo"}, 1, 30.0) for n, engine in enumerate(engines))
        )
        return [[row.id for row in rows] for rows in claims]
    finally:
        for engine in (setup, *engines):
            await engine.dispose()


def test_twenty_concurrent_claims_take_twenty_distinct_jobs(database_url: str) -> None:
    claims = asyncio.run(race_for_jobs(database_url, jobs=20, claimers=20))
    taken = [job_id for claim in claims for job_id in claim]
    assert len(taken) == 20 and len(set(taken)) == 20
    assert all(len(claim) == 1 for claim in claims)


def test_claimers_racing_for_fewer_jobs_never_share_one(database_url: str) -> None:
    claims = asyncio.run(race_for_jobs(database_url, jobs=8, claimers=20))
    taken = [job_id for claim in claims for job_id in claim]
    assert len(taken) == 8 and len(set(taken)) == 8


def test_a_job_of_a_worker_killed_with_sigkill_is_recovered_and_rerun_once(
    jobs_client: Any, worker_processes: Any, tmp_path: Path, database_url: str
) -> None:
    api = jobs_client(workers=0)
    worker = worker_processes(database_url, 2)
    requeued_marker, failed_marker = tmp_path / "requeued", tmp_path / "failed"
    requeued = submit(api, "test.sleep", params={"seconds": 1, "marker": str(requeued_marker)})
    failed = submit(api, "test.sleep", params={"seconds": 60, "marker": str(failed_marker)}, max_attempts=1)
    first_pids = started(requeued_marker), started(failed_marker)
    assert api.get(f"/api/jobs/{requeued['id']}").json()["status"] == "RUNNING"

    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert all(process_gone(pid) for pid in first_pids), "a job outlived its killed worker"
    requeued_marker.unlink()

    jobs_client()  # a live worker: it finds the leases expired (FAST: 10 s) and recovers them
    rerun = wait_for(api, requeued["id"], timeout=90)
    assert rerun["status"] == "SUCCEEDED" and rerun["attempt"] == 2
    pid, attempt = map(int, requeued_marker.read_text().split())
    assert attempt == 2 and pid not in first_pids
    lost = wait_for(api, failed["id"], timeout=90)
    assert lost["status"] == "FAILED" and lost["attempt"] == 1
    assert lost["error"].startswith("lost: its worker stopped renewing the lease")


def test_two_worker_processes_share_80_jobs_on_postgresql_and_run_each_exactly_once(
    postgresql_url: str, start_jobs: Any, worker_processes: Any, tmp_path: Path
) -> None:
    api = start_jobs(postgresql_url, workers=0)
    workers = [worker_processes(postgresql_url, 2), worker_processes(postgresql_url, 2)]
    log = tmp_path / "runs.log"
    ids = [submit(api, "test.record", params={"log": str(log), "seconds": 0.01})["id"] for _ in range(JOBS_SHARED)]
    deadline = time.monotonic() + 120
    while len(api.get("/api/jobs", params={"status": "SUCCEEDED", "limit": 1000}).json()["jobs"]) < JOBS_SHARED:
        assert time.monotonic() < deadline, f"{JOBS_SHARED} jobs did not finish in time"
        assert all(worker.poll() is None for worker in workers), "a worker process died"
        time.sleep(0.2)
    runs = [line.split() for line in log.read_text().splitlines()]
    assert Counter(run[0] for run in runs) == Counter(ids), "some job ran twice or never"
    fork_servers = {worker.pid: children(worker.pid) for worker in workers}  # each worker's jobs fork from its own
    by_worker = Counter(next(w for w, servers in fork_servers.items() if int(run[2]) in servers) for run in runs)
    assert set(by_worker) == {worker.pid for worker in workers}, f"one worker ran no job: {by_worker}"


@contextmanager
def cli_worker(tmp_path: Path, **environment: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PLUGHOST_PLUGINS": "jobs", "PLUGHOST_DATA_DIR": str(tmp_path / "data"), **environment}
    worker = subprocess.Popen(
        [sys.executable, "-m", "core", "jobs", "worker", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()


def test_the_cli_worker_starts_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    with cli_worker(tmp_path) as worker:
        assert worker.stdout is not None
        assert "runs 1 at once, types: none" in line_containing(worker.stdout, "jobs: worker", timeout=120)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0


def line_containing(stream: IO[str], text: str, timeout: float) -> str:
    """The first line of ``stream`` holding ``text``; fails after ``timeout`` seconds, or when the stream ends first."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, name="line-reader", daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} within {timeout} s") from None
        assert line, f"the output ended without a line with {text!r}"
        if text in line:
            return line


def test_the_cli_worker_refuses_bad_settings_naming_the_plugin(tmp_path: Path) -> None:
    with cli_worker(tmp_path, PLUGHOST_JOBS_LEASE_SECONDS="1") as worker:
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 1
    assert "plugin 'jobs'" in output and "PLUGHOST_JOBS_* (together)" in output
    assert "lease_seconds must be at least 3 x heartbeat_seconds" in output
