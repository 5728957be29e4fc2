"""What a job reports: captured output and log records (bounded, followed live over SSE), progress, artifacts,
deletion."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from core.testing import serve_in_thread
from plugins.jobs.dispatcher import Dispatcher

from . import jobtypes
from .conftest import FAST, spawned, submit, wait_for


def test_output_log_records_and_programs_output_are_captured(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.report", params={"lines": 3})["id"])
    assert job["status"] == "SUCCEEDED"
    logs = client.get(f"/api/jobs/{job['id']}/logs").json()
    assert logs["status"] == "SUCCEEDED" and logs["dropped_bytes"] == 0 and logs["size"] == len(logs["log"].encode())
    text = logs["log"]
    for expected in (
        "line 0\n",
        "line 2\n",
        "INFO plughost.job.test.report: record 1",
        "to stderr\n",
        "from a program\n",
    ):
        assert expected in text, text
    assert text.index("line 0") < text.index("line 1") < text.index("to stderr") < text.index("from a program")


def test_a_failed_job_logs_its_traceback(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    job = wait_for(client, submit(client, "test.broken", params={"value": "x"})["id"])
    text = client.get(f"/api/jobs/{job['id']}/logs").json()["log"]
    assert "Traceback" in text and "ValueError: cannot handle 'x'" in text


def test_the_log_keeps_only_the_last_bytes_with_a_note(jobs_client: Any) -> None:
    client = jobs_client(max_log_bytes=64 * 1024)
    job = wait_for(client, submit(client, "test.report", params={"lines": 3000, "line_bytes": 99})["id"])
    logs = client.get(f"/api/jobs/{job['id']}/logs").json()
    assert logs["size"] > 300_000
    assert 0 < logs["size"] - logs["dropped_bytes"] <= 64 * 1024 + 64 * 1024, (
        "more than the limit (plus one chunk) is kept"
    )
    assert logs["log"].startswith(f"[{logs['dropped_bytes']} earlier bytes dropped")
    assert "line 2999" in logs["log"] and "line 0." not in logs["log"]


def test_progress_shows_in_the_jobs_state_while_it_runs(jobs_client: Any, tmp_path: Path) -> None:
    client = jobs_client()
    hold = tmp_path / "hold"
    job = submit(client, "test.report", params={"lines": 4, "hold": str(hold)})
    assert job["progress"] is None
    deadline = time.monotonic() + 20
    while (state := client.get(f"/api/jobs/{job['id']}").json())["progress"] is None or state["progress"][
        "fraction"
    ] < 1:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["status"] == "RUNNING" and state["progress"] == {"fraction": 1.0, "message": "4 of 4"}
    hold.touch()
    assert wait_for(client, job["id"])["progress"] == {"fraction": 1.0, "message": "4 of 4"}


def test_logs_follow_a_running_job_over_sse_until_it_ends(
    make_app: Any, database_url: str, register_plugin: Any, tmp_path: Path
) -> None:
    register_plugin(jobtypes)
    app = make_app(["jobs", "workspace", jobtypes], {"database_url": database_url, "jobs": FAST})
    hold = tmp_path / "hold"
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        job = client.post("/api/jobs", json={"type": "test.report", "params": {"lines": 2, "hold": str(hold)}}).json()
        events = []
        with client.stream("GET", f"/api/jobs/{job['id']}/logs", params={"follow": 1}) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
                    if name == "log" and not hold.exists():
                        assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "RUNNING", (
                            "the log was not streamed live"
                        )
                        hold.touch()  # the job may end now
        text = "".join(data["text"] for name, data in events if name == "log")
        assert "line 1\n" in text and "from a program\n" in text
        assert events[-1] == ("end", {"status": "SUCCEEDED", "error": None})
        sse = client.get(f"/api/jobs/{job['id']}/logs", headers={"Accept": "text/event-stream"})
        assert sse.headers["content-type"].startswith("text/event-stream") and "event: end" in sse.text


def test_artifacts_are_listed_downloaded_scoped_and_deleted_with_the_job(jobs_client: Any, tmp_path: Path) -> None:
    client = jobs_client(artifacts_dir=str(tmp_path / "artifacts"))
    team: dict[str, Any] = {"X-Plughost-Workspace": "team-a"}
    job = wait_for(
        client, submit(client, "test.report", headers=team, params={"lines": 2, "artifact": "lines.txt"})["id"], **team
    )
    listed = client.get(f"/api/jobs/{job['id']}/artifacts", headers=team).json()["artifacts"]
    assert [(a["name"], a["size"], a["url"]) for a in listed] == [
        ("lines.txt", 13, f"/api/jobs/{job['id']}/artifacts/lines.txt")
    ]
    download = client.get(f"/api/jobs/{job['id']}/artifacts/lines.txt", headers=team)
    assert download.status_code == 200 and download.content == b"line 0\nline 1"
    assert (tmp_path / "artifacts" / "team-a" / job["id"] / "lines.txt").is_file()

    assert client.get(f"/api/jobs/{job['id']}/artifacts/lines.txt").status_code == 404, (
        "another workspace must not see it"
    )
    assert client.get(f"/api/jobs/{job['id']}/artifacts/missing.txt", headers=team).status_code == 404
    for bad in (".hidden", "a%2Fb", "..%2F..%2Fplughost.db", "%2E%2E"):  # a literal ".." is resolved by the client
        response = client.get(f"/api/jobs/{job['id']}/artifacts/{bad}", headers=team)
        assert response.status_code == 400 and "invalid artifact name" in response.json()["detail"], (
            bad,
            response.text,
        )

    assert client.delete(f"/api/jobs/{job['id']}").status_code == 404, "another workspace must not delete it"
    assert client.delete(f"/api/jobs/{job['id']}", headers=team).status_code == 204
    assert client.get(f"/api/jobs/{job['id']}", headers=team).status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/logs", headers=team).status_code == 404
    assert not (tmp_path / "artifacts" / "team-a" / job["id"]).exists()


def test_an_unfinished_job_cannot_be_deleted(jobs_client: Any, tmp_path: Path) -> None:
    client = jobs_client()
    marker = tmp_path / "spawned"
    job = submit(client, "test.spawn", params={"marker": str(marker)})
    spawned(marker)
    refused = client.delete(f"/api/jobs/{job['id']}")
    assert refused.status_code == 409 and "cancel it" in refused.json()["detail"]
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert wait_for(client, job["id"])["status"] == "CANCELED"
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204


def test_a_finished_job_shows_its_final_progress_sent_during_a_report_write(
    start_jobs: Any, sqlite_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """The job's last progress arrives while the previous one is being written and the job ends at once:
    the reporter must still store it (it used to stop on seeing the end, and the job stayed at "1 of 2")."""
    pause = tmp_path / "pause"
    write_progress = Dispatcher._report

    async def end_the_job_while_1_of_2_is_written(self: Dispatcher, running: Any) -> None:
        taken = running.progress
        await write_progress(self, running)
        if taken == (0.5, "1 of 2"):
            pause.touch()  # the job sends "2 of 2" and ends before this write returns
            await asyncio.wait_for(running.ended.wait(), 30)

    monkeypatch.setattr(Dispatcher, "_report", end_the_job_while_1_of_2_is_written)
    client = start_jobs(sqlite_url)
    job = wait_for(client, submit(client, "test.report", params={"lines": 2, "pause": str(pause)})["id"])
    assert pause.exists(), "the interleaving under test did not happen"
    assert job["status"] == "SUCCEEDED" and job["progress"] == {"fraction": 1.0, "message": "2 of 2"}
    assert "line 1\n" in client.get(f"/api/jobs/{job['id']}/logs").json()["log"]
