"""Running jobs in subprocesses: results, hard timeouts, cancels that kill, retries, shutdown."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from core.testing import client_for
from plugins.jobs.dispatcher import Dispatcher
from plugins.jobs.store import JobStore

from . import jobtypes
from .conftest import FAST, process_gone, started, submit, wait_for


def test_a_job_runs_in_a_subprocess_and_its_result_is_stored(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.echo", params={"value": {"a": [1, 2]}})["id"])
    assert job["status"] == "SUCCEEDED", job
    assert job["result"]["value"] == {"a": [1, 2]} and job["result"]["attempt"] == 1
    assert job["result"]["pid"] != os.getpid()
    assert job["started_at"] and job["finished_at"] >= job["started_at"] and job["error"] is None


def test_async_job_functions_are_awaited(sqlite_shared_jobs_client: Any) -> None:
    client = sqlite_shared_jobs_client
    job = wait_for(client, submit(client, "test.async-echo", params={"value": 7})["id"])
    assert job["result"] == {"value": 7, "async": True}


def test_a_timeout_kills_a_sleeping_job(shared_jobs_client: Any, tmp_path: Path) -> None:
    client = shared_jobs_client
    marker = tmp_path / "sleeping"
    job = submit(client, "test.sleep", params={"seconds": 60, "marker": str(marker)}, timeout_seconds=1)
    pid = started(marker)
    done = wait_for(client, job["id"])
    assert done["status"] == "TIMEOUT" and done["error"] == "killed after 1 s"
    assert done["attempt"] == 1, "a timeout is final, not retried"
    assert process_gone(pid), "the job's process still runs after its timeout"


def test_cancel_kills_a_running_job(shared_jobs_client: Any, tmp_path: Path) -> None:
    client = shared_jobs_client
    marker = tmp_path / "sleeping"
    job = submit(client, "test.sleep", params={"seconds": 3600, "marker": str(marker)})
    pid = started(marker)
    response = client.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    done = wait_for(client, job["id"])  # long before the job's hour is over
    assert done["status"] == "CANCELED" and done["error"] == "canceled while running"
    assert process_gone(pid)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    assert wait_for(client, submit(client, "test.echo")["id"])["status"] == "SUCCEEDED", (
        "the pool replaced the killed process"
    )


def test_a_cancel_reaches_a_job_run_by_another_process(jobs_client: Any, tmp_path: Path) -> None:
    """The API server runs no jobs; the worker learns of the cancel from the database."""
    worker = jobs_client()
    api = jobs_client(workers=0)
    marker = tmp_path / "sleeping"
    job = submit(api, "test.sleep", params={"seconds": 3600, "marker": str(marker)})
    pid = started(marker)
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    assert wait_for(worker, job["id"])["status"] == "CANCELED"  # long before the job's hour is over
    assert process_gone(pid)


def test_transient_errors_are_retried_with_backoff_until_success(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.flaky", params={"succeed_on": 3})["id"])
    assert job["status"] == "SUCCEEDED" and job["attempt"] == 3
    assert job["result"] == {"attempts": 3}


def test_retries_stop_at_max_attempts_with_the_last_error(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.flaky", params={"succeed_on": 9})["id"])
    assert job["status"] == "FAILED" and job["attempt"] == 3
    assert job["error"] == "ConnectionError: upstream unavailable on attempt 3"


def test_errors_not_declared_transient_fail_at_once(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.broken", params={"value": "x"})["id"])
    assert job["status"] == "FAILED" and job["attempt"] == 1 and job["max_attempts"] == 3
    assert job["error"] == "ValueError: cannot handle 'x'"


def test_max_attempts_can_be_set_per_submission(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.flaky", params={"succeed_on": 2}, max_attempts=1)["id"])
    assert job["status"] == "FAILED" and job["attempt"] == 1


def test_jobs_beyond_the_pool_size_queue_and_all_run(jobs_client: Any, tmp_path: Path) -> None:
    client = jobs_client(workers=2)
    log = tmp_path / "runs.log"
    ids = [submit(client, "test.record", params={"log": str(log), "seconds": 0.2})["id"] for _ in range(6)]
    assert all(wait_for(client, job_id)["status"] == "SUCCEEDED" for job_id in ids)
    runs = [line.split() for line in log.read_text().splitlines()]
    assert sorted(run[0] for run in runs) == sorted(ids)
    spans = sorted((float(start), float(end)) for _, _, _, start, end in runs)
    most_at_once = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most_at_once <= 2, "more jobs ran at once than the pool has processes"


def test_shutdown_requeues_jobs_that_outlive_the_grace_period(
    make_app: Any, jobs_client: Any, database_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "sleeping"
    settings = {"database_url": database_url, "jobs": {**FAST, "shutdown_grace_seconds": 0.2}}
    with client_for(make_app(["jobs", "workspace", jobtypes], settings)) as client:
        job = submit(client, "test.sleep", params={"seconds": 60, "marker": str(marker)})
        pid = started(marker)
    assert process_gone(pid)
    requeued = jobs_client(workers=0).get(f"/api/jobs/{job['id']}").json()
    assert requeued["status"] == "PENDING" and requeued["attempt"] == 0


def test_shutdown_lets_a_claim_in_flight_finish_and_gives_back_what_it_claimed(
    make_app: Any, jobs_client: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling a database call at shutdown could leave SQLAlchemy a close that never ends
    (the event loop then hung on exit); a job claimed as shutdown began must not start."""
    shutdown_began = threading.Event()
    claims_cut_short: list[str] = []
    shutdown, claim = Dispatcher.shutdown, JobStore.claim

    async def noting_shutdown(self: Dispatcher, task: asyncio.Task[None]) -> None:
        shutdown_began.set()
        await shutdown(self, task)

    async def claim_once_shutdown_begins(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        try:
            while not shutdown_began.is_set():  # noqa: ASYNC110 - a threading.Event, read by the test's thread too
                await asyncio.sleep(0.01)
            return await claim(self, *args, **kwargs)
        except asyncio.CancelledError:
            claims_cut_short.append("claim")
            raise

    monkeypatch.setattr(Dispatcher, "shutdown", noting_shutdown)
    monkeypatch.setattr(JobStore, "claim", claim_once_shutdown_begins)
    marker = tmp_path / "sleeping"
    with client_for(make_app(["jobs", "workspace", jobtypes], {"database_url": database_url, "jobs": FAST})) as client:
        job = submit(client, "test.sleep", params={"seconds": 60, "marker": str(marker)})
    assert shutdown_began.is_set() and claims_cut_short == []
    monkeypatch.setattr(JobStore, "claim", claim)
    given_back = jobs_client(workers=0).get(f"/api/jobs/{job['id']}").json()
    assert given_back["status"] == "PENDING" and given_back["attempt"] == 0 and given_back["started_at"] is None, (
        given_back
    )
    assert not marker.exists(), "a job claimed during shutdown was started"
