"""``plughost_job_finished``: other plugins react to finished jobs without polling, isolated from each other."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from core import hookimpl

from . import jobtypes
from .conftest import submit, wait_for


class Listener:
    PLUGHOST_NAME = "listener"

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    @hookimpl(optionalhook=True)
    async def plughost_job_finished(self, job):
        self.jobs.append(job)


class Failing:
    PLUGHOST_NAME = "failing"

    @hookimpl(optionalhook=True)
    def plughost_job_finished(self, job):
        raise RuntimeError("webhook down")


def test_finished_jobs_reach_every_implementation_and_a_failing_one_is_isolated(
    make_app, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    from core.testing import client_for

    from .conftest import FAST

    listener = Listener()
    app = make_app(
        ["jobs", jobtypes, listener, Failing()],
        {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", "jobs": FAST},
    )
    with caplog.at_level(logging.ERROR, logger="plughost.events"), client_for(app) as client:
        ok = submit(client, "test.echo", params={"value": 7})
        broken = submit(client, "test.broken", params={})
        flaky = submit(client, "test.flaky", params={"succeed_on": 2})  # one retried attempt, then success
        for job in (ok, broken, flaky):
            wait_for(client, job["id"], timeout=60)
        deadline = time.monotonic() + 30
        while len(listener.jobs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    by_id = {job["id"]: job for job in listener.jobs}
    assert len(listener.jobs) == 3, listener.jobs  # once each: the retried attempt is not final
    assert by_id[ok["id"]]["status"] == "SUCCEEDED" and by_id[ok["id"]]["result"]["value"] == 7
    assert by_id[ok["id"]]["type"] == "test.echo" and by_id[ok["id"]]["workspace"] == "default"
    assert by_id[broken["id"]]["status"] == "FAILED" and by_id[broken["id"]]["error"]
    assert by_id[flaky["id"]]["status"] == "SUCCEEDED" and by_id[flaky["id"]]["attempt"] == 2
    assert "plughost_job_finished of plugin 'failing' raised" in caplog.text


def test_a_full_queue_drops_and_counts_and_a_slow_implementation_is_cut_off(make_app) -> None:
    from core.events import EventQueue

    class Slow:
        PLUGHOST_NAME = "slow"

        @hookimpl(optionalhook=True)
        async def plughost_job_finished(self, job):
            await asyncio.sleep(60)

    host = make_app(["jobs", Slow()]).assembly.host

    async def scenario() -> EventQueue:
        events = EventQueue(host, "plughost_job_finished", size=2, timeout_seconds=0.2)
        async with events.running():
            for number in range(5):  # the first is being delivered, two wait, two are dropped
                events.emit(job={"id": str(number)})
                await asyncio.sleep(0)
            for _ in range(500):  # each of the three is cut off after 0.2 s
                if events.delivered == 3:
                    break
                await asyncio.sleep(0.05)
        return events

    events = asyncio.run(scenario())
    assert events.dropped == 2 and events.delivered == 3 and events.failed == 3
