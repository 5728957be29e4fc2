"""The jobs API: types, submit validation, reads, listing, workspaces, cancel rules."""

from __future__ import annotations

from typing import Any

import plugins.jobs
from core.testing import assert_plugin_contract

from . import jobtypes
from .conftest import submit, wait_for


def test_the_plugin_keeps_the_contract() -> None:
    assert_plugin_contract(plugins.jobs)


def test_types_list_every_registered_type_with_its_schema_and_policy(sqlite_jobs_client: Any) -> None:
    client = sqlite_jobs_client(workers=0)
    types = {t["name"]: t for t in client.get("/api/jobs/types").json()["types"]}
    assert set(types) == {t.name for t in jobtypes.JOB_TYPES}
    flaky = types["test.flaky"]
    assert flaky["plugin"] == "testjobs"
    assert flaky["parameters"]["required"] == ["succeed_on"]
    assert flaky["retry"]["max_attempts"] == 3
    assert flaky["retry"]["transient"] == ["builtins.ConnectionError"]


def test_submit_answers_at_once_with_a_pending_job(jobs_client: Any) -> None:
    client = jobs_client(workers=0)
    response = client.post("/api/jobs", json={"type": "test.sleep", "params": {"seconds": 1}})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["status"] == "PENDING" and job["attempt"] == 0
    assert job["params"] == {"seconds": 1.0, "marker": None}
    assert job["timeout_seconds"] == 60.0 and job["max_attempts"] == 2
    assert client.get(f"/api/jobs/{job['id']}").json() == job


def test_unknown_types_and_bad_parameters_are_400_naming_the_problem(sqlite_jobs_client: Any) -> None:
    client = sqlite_jobs_client(workers=0)
    unknown = client.post("/api/jobs", json={"type": "os.system", "params": {"command": "rm -rf /"}})
    assert unknown.status_code == 400
    assert "unknown job type 'os.system'" in unknown.json()["detail"] and "test.echo" in unknown.json()["detail"]

    invalid = client.post("/api/jobs", json={"type": "test.sleep", "params": {"seconds": -1, "marker": 3}})
    assert invalid.status_code == 400
    detail = invalid.json()["detail"]
    assert detail["message"] == "invalid parameters for job type 'test.sleep'"
    assert {e["field"] for e in detail["errors"]} == {"seconds", "marker"}

    missing = client.post("/api/jobs", json={"type": "test.flaky"})
    assert missing.status_code == 400
    assert missing.json()["detail"]["errors"] == [{"field": "succeed_on", "problem": "Field required"}]

    assert client.post("/api/jobs", json={"type": "test.echo", "timeout_seconds": 0}).status_code == 422
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing was stored


def test_unknown_ids_are_404_and_malformed_ids_422(sqlite_jobs_client: Any) -> None:
    client = sqlite_jobs_client(workers=0)
    missing = client.get("/api/jobs/" + "0" * 32)
    assert missing.status_code == 404 and "no job" in missing.json()["detail"]
    assert client.post("/api/jobs/" + "0" * 32 + "/cancel").status_code == 404
    assert client.get("/api/jobs/not-an-id").status_code == 422


def test_listing_filters_and_paginates_newest_first(jobs_client: Any) -> None:
    client = jobs_client(workers=0)
    sleeps = [submit(client, "test.sleep", params={"seconds": n})["id"] for n in range(5)]
    echo = submit(client, "test.echo")["id"]
    assert [j["id"] for j in client.get("/api/jobs", params={"type": "test.echo"}).json()["jobs"]] == [echo]

    seen, token = [], None
    while True:
        page = client.get(
            "/api/jobs", params={"type": "test.sleep", "limit": 2, **({"page_token": token} if token else {})}
        ).json()
        seen += [j["id"] for j in page["jobs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == sleeps[::-1]

    assert client.get("/api/jobs", params={"status": "RUNNING"}).json()["jobs"] == []
    assert client.get("/api/jobs", params={"status": "BOGUS"}).status_code == 422
    bad_token = client.get("/api/jobs", params={"page_token": "xyz"})
    assert bad_token.status_code == 400 and "page_token" in bad_token.json()["detail"]


def test_jobs_are_scoped_by_workspace(jobs_client: Any) -> None:
    client = jobs_client(workers=0)
    team_a = {"X-Plughost-Workspace": "team-a"}
    job = submit(client, "test.echo", headers=team_a)
    assert job["workspace"] == "team-a"
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 404
    assert client.get("/api/jobs").json()["jobs"] == []
    assert [j["id"] for j in client.get("/api/jobs", headers=team_a).json()["jobs"]] == [job["id"]]


def test_a_job_runs_in_its_workspace(shared_jobs_client: Any) -> None:
    client = shared_jobs_client
    team_b: dict[str, Any] = {"X-Plughost-Workspace": "team-b"}
    job = submit(client, "test.echo", headers=team_b, params={"value": 1})
    done = wait_for(client, job["id"], **team_b)
    assert done["result"]["workspace"] == "team-b"


def test_cancel_of_a_pending_job_is_immediate_and_of_a_finished_one_409(jobs_client: Any) -> None:
    client = jobs_client(workers=0)
    job = submit(client, "test.echo")
    canceled = client.post(f"/api/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "CANCELED" and canceled.json()["finished_at"]
    again = client.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == f"job {job['id']} already finished as CANCELED; nothing to cancel"
