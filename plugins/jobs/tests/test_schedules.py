"""Schedules: the API, cron and interval timetables, exactly-once ticks across worker processes, catch-up,
plugin-declared schedules."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from core.database import create_engine, migrate
from plugins.jobs.hookspecs import Schedule
from plugins.jobs.schedules import NewSchedule, ScheduleStore, Timing, schedules
from plugins.jobs.service import MIGRATIONS
from plugins.jobs.store import JobStore, Submission

from . import jobtypes
from .conftest import wait_for


def create(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/api/jobs/schedules", json={"type": "test.echo", **body})
    assert response.status_code == 201, response.text
    return response.json()


def scheduled_jobs(client: Any, schedule_id: str) -> list[dict[str, Any]]:
    return client.get("/api/jobs", params={"schedule_id": schedule_id, "limit": 1000}).json()["jobs"]


def seconds(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def test_schedules_are_created_listed_paused_resumed_and_deleted(jobs_client: Any) -> None:
    client = jobs_client(workers=0)
    daily = create(client, name="nightly", cron="30 2 * * *", timezone="Europe/Paris", params={"value": 1})
    assert daily["params"] == {"value": 1} and daily["paused"] is False and daily["catch_up"] == "coalesce"
    next_run = datetime.fromisoformat(daily["next_run"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (next_run.hour, next_run.minute) == (2, 30) and 0 < seconds(daily["next_run"]) - time.time() <= 86400 + 3600
    every = create(client, interval_seconds=3600)
    assert every["name"] == every["id"]
    assert [s["name"] for s in client.get("/api/jobs/schedules").json()["schedules"]] == sorted(
        ["nightly", every["id"]]
    )
    assert client.get(f"/api/jobs/schedules/{daily['id']}").json() == daily

    assert client.post(f"/api/jobs/schedules/{daily['id']}/pause").json()["paused"] is True
    resumed = client.post(f"/api/jobs/schedules/{daily['id']}/resume").json()
    assert resumed["paused"] is False and resumed["next_run"] == daily["next_run"]

    team = {"X-Plughost-Workspace": "team-a"}
    assert client.get(f"/api/jobs/schedules/{daily['id']}", headers=team).status_code == 404
    assert client.delete(f"/api/jobs/schedules/{daily['id']}", headers=team).status_code == 404
    assert client.delete(f"/api/jobs/schedules/{daily['id']}").status_code == 204
    assert client.get(f"/api/jobs/schedules/{daily['id']}").status_code == 404
    assert client.post(f"/api/jobs/schedules/{daily['id']}/pause").status_code == 404


def test_invalid_schedules_are_400_or_409_and_store_nothing(jobs_client: Any) -> None:
    client = jobs_client(workers=0)
    create(client, name="taken", interval_seconds=60)
    cases: dict[str, dict[str, Any]] = {
        "unknown job type 'nope'": {"type": "nope", "interval_seconds": 60},
        "invalid cron expression '61 * * * *'": {"cron": "61 * * * *"},
        "invalid cron expression '0 0 30 2 *'": {"cron": "0 0 30 2 *"},
        "give exactly one of cron and interval_seconds": {"cron": "* * * * *", "interval_seconds": 60},
        "give exactly one of": {},
        "unknown time zone 'Mars/Olympus'": {"cron": "* * * * *", "timezone": "Mars/Olympus"},
        "interval_seconds must be between": {"interval_seconds": 0.01},
    }
    for message, body in cases.items():
        response = client.post("/api/jobs/schedules", json={"type": "test.echo", **body})
        assert response.status_code == 400 and message in response.json()["detail"], (body, response.text)
    bad_params = client.post("/api/jobs/schedules", json={"type": "test.flaky", "interval_seconds": 60})
    assert bad_params.status_code == 400 and bad_params.json()["detail"]["errors"][0]["field"] == "succeed_on"
    taken = client.post("/api/jobs/schedules", json={"type": "test.echo", "name": "taken", "interval_seconds": 5})
    assert taken.status_code == 409
    assert [s["name"] for s in client.get("/api/jobs/schedules").json()["schedules"]] == ["taken"]


def test_an_interval_schedule_runs_its_job_each_tick(jobs_client: Any) -> None:
    client = jobs_client()
    schedule = create(client, interval_seconds=1, params={"value": "tick"})
    deadline = time.monotonic() + 20
    while len(jobs := scheduled_jobs(client, schedule["id"])) < 2:
        assert time.monotonic() < deadline, jobs
        time.sleep(0.05)
    client.post(f"/api/jobs/schedules/{schedule['id']}/pause")
    jobs = scheduled_jobs(client, schedule["id"])  # a slow machine may have seen another tick before the pause
    done = [wait_for(client, job["id"]) for job in jobs]
    assert all(job["status"] == "SUCCEEDED" and job["result"]["value"] == "tick" for job in done)
    assert seconds(done[0]["scheduled_for"]) - seconds(done[1]["scheduled_for"]) == pytest.approx(1.0)
    assert client.get(f"/api/jobs/schedules/{schedule['id']}").json()["last_job_id"] in {job["id"] for job in done}


def move_next_run(database_url: str, schedule_id: str, next_run: float) -> None:
    """As if every server had been down since ``next_run``."""

    async def move() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(update(schedules).where(schedules.c.id == schedule_id).values(next_run=next_run))
        await engine.dispose()

    asyncio.run(move())


@pytest.mark.parametrize("catch_up, runs", [("coalesce", 1), ("skip", 0)])
def test_ticks_missed_while_down_are_coalesced_or_skipped(
    start_jobs: Any, database_url: str, catch_up: str, runs: int
) -> None:
    api = start_jobs(database_url, workers=0)
    schedule = create(api, interval_seconds=3600, catch_up=catch_up)
    missed_since = time.time() - 3 * 3600 - 60  # three ticks missed, and a fourth one's grace ran out
    move_next_run(database_url, schedule["id"], missed_since)
    start_jobs(database_url)  # a worker comes up
    deadline = time.monotonic() + 20
    while (state := api.get(f"/api/jobs/schedules/{schedule['id']}").json())["last_run"] is None:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    jobs = scheduled_jobs(api, schedule["id"])
    assert len(jobs) == runs, jobs
    following = seconds(state["next_run"])
    assert time.time() < following <= time.time() + 3600
    phase = (following - missed_since) % 3600
    assert min(phase, 3600 - phase) < 1e-3, "the interval lost its phase"


def test_each_tick_runs_exactly_once_with_two_worker_processes_on_postgresql(
    postgresql_url: str, start_jobs: Any, worker_processes: Any
) -> None:
    api = start_jobs(postgresql_url, workers=0)
    workers = [worker_processes(postgresql_url, 2), worker_processes(postgresql_url, 2)]
    schedule = create(api, interval_seconds=1)
    deadline = time.monotonic() + 60
    while len(scheduled_jobs(api, schedule["id"])) < 6:
        assert time.monotonic() < deadline, "the schedule did not fire 6 times"
        assert all(worker.poll() is None for worker in workers), "a worker process died"
        time.sleep(0.1)
    api.post(f"/api/jobs/schedules/{schedule['id']}/pause")
    jobs = scheduled_jobs(api, schedule["id"])
    ticks = sorted(seconds(job["scheduled_for"]) for job in jobs)
    assert len(set(ticks)) == len(ticks), "a tick ran twice"
    assert [round(b - a, 6) for a, b in itertools.pairwise(ticks)] == [1.0] * (len(ticks) - 1), "a tick was skipped"
    assert len(ticks) == round(ticks[-1] - ticks[0]) + 1
    assert all(wait_for(api, job["id"])["status"] == "SUCCEEDED" for job in jobs)


def test_plugins_declare_schedules_that_are_upserted_at_start_up(
    start_jobs: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobtypes, "DECLARED", [Schedule("test.nightly", "test.echo", {"value": 1}, cron="0 3 * * *")])
    first = start_jobs(database_url, workers=0)
    [declared] = first.get("/api/jobs/schedules").json()["schedules"]
    assert (
        declared["name"] == "test.nightly"
        and declared["declared_by"] == "testjobs"
        and declared["params"] == {"value": 1}
    )
    first.post(f"/api/jobs/schedules/{declared['id']}/pause")

    monkeypatch.setattr(jobtypes, "DECLARED", [Schedule("test.nightly", "test.echo", {"value": 2}, cron="0 3 * * *")])
    [updated] = start_jobs(database_url, workers=0).get("/api/jobs/schedules").json()["schedules"]
    assert updated["id"] == declared["id"] and updated["params"] == {"value": 2}
    assert updated["paused"] is True and updated["next_run"] == declared["next_run"], (
        "a restart must keep state and timetable"
    )

    monkeypatch.setattr(jobtypes, "DECLARED", [])
    assert start_jobs(database_url, workers=0).get("/api/jobs/schedules").json()["schedules"] == []


def test_a_declared_schedule_of_an_unknown_type_stops_start_up_naming_the_plugin(
    start_jobs: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobtypes, "DECLARED", [Schedule("test.bad", "nope", interval_seconds=60)])
    with pytest.raises(Exception, match="testjobs") as failure:
        start_jobs(database_url, workers=0)
    assert "unknown job type 'nope'" in str(failure.value)


async def race_for_a_tick(database_url: str, racers: int) -> list[Any]:
    """``racers`` separate engines (as separate processes would have) fire the same due tick at once."""
    setup = create_engine(database_url)
    await migrate(setup, MIGRATIONS, "jobs")
    store = ScheduleStore(setup, JobStore(setup))
    schedule = await store.create(NewSchedule("race", "test.echo", {}, Timing(None, 60.0, "UTC"), "coalesce"))
    assert schedule is not None
    async with setup.begin() as connection:
        await connection.execute(update(schedules).values(next_run=time.time() - 1))
    [due] = await store.due({"test.echo"}, time.time())
    engines = [create_engine(database_url) for _ in range(racers)]
    try:
        for engine in engines:  # open every connection first, so the claims start together
            async with engine.connect():
                pass
        submission = Submission("test.echo", {}, 10.0, 1, True, schedule_id=due.id, scheduled_for=due.next_run)
        return await asyncio.gather(
            *(ScheduleStore(engine, JobStore(engine)).fire(due, submission, time.time(), 60.0) for engine in engines)
        )
    finally:
        for engine in (setup, *engines):
            await engine.dispose()


def test_racing_processes_fire_a_tick_once(database_url: str) -> None:
    fired = asyncio.run(race_for_a_tick(database_url, racers=12))
    assert len([job for job in fired if job is not None]) == 1
