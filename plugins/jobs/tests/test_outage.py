"""Jobs ride out a database outage: a job running while PostgreSQL is stopped (for longer than its
lease) keeps running, its lease is renewed when the database is back, and it succeeds once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.testing import PostgreSQLCluster

from .conftest import started, submit, wait_for

OUTAGE = {"heartbeat_seconds": 0.5, "lease_seconds": 2.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}
"""Leases much shorter than the outage: on the database's clock every lease expires while it is away."""


def test_a_job_running_across_a_database_outage_succeeds_once(
    start_jobs: Any, postgresql_cluster: PostgreSQLCluster, stoppable_postgresql_url: str, tmp_path: Path
) -> None:
    client = start_jobs(stoppable_postgresql_url, **OUTAGE)
    marker = tmp_path / "started"
    job = submit(client, "test.sleep", params={"seconds": 6, "marker": str(marker)})
    started(marker)
    with postgresql_cluster.stopped():
        time.sleep(3 * OUTAGE["lease_seconds"])
    done = wait_for(client, job["id"], timeout=60)
    assert done["status"] == "SUCCEEDED", done
    assert done["attempt"] == 1 and done["result"] == {"slept": 6, "attempt": 1}, done
    assert marker.read_text().split()[1] == "1", "the job was started again"
