"""The ``assistant.batch_analysis`` job with the real jobs plugin, reading a real otel store in its subprocess,
with accounts off and on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Status, StatusCode

from core.cli import build_cli
from core.testing import client_for, serve_in_thread

from .otlp import MS, exporting, trace_id_of

FAST_JOBS = {"heartbeat_seconds": 0.2, "lease_seconds": 10.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}


def export(
    base: str, service: str, *, failed: bool, hours_ago: float = 0, workspace: str | None = None, llm: bool = False
) -> str:
    """GET /checkout, 100 ms: 'reserve' 0-80, then 'charge card' 80-100 (declined when ``failed``);
    an LLM call when ``llm``."""
    with exporting(base, service, workspace) as tracer:
        return _checkout(tracer, failed=failed, hours_ago=hours_ago, llm=llm)


def _checkout(tracer: Any, *, failed: bool, hours_ago: float, llm: bool) -> str:
    t0 = time.time_ns() - int(hours_ago * 3600 * 1e9)
    root = tracer.start_span("GET /checkout", start_time=t0)
    inside = otel_trace.set_span_in_context(root)
    reserve = tracer.start_span("reserve", context=inside, start_time=t0)
    if llm:
        tracer.start_span(
            "chat gpt-4o",
            context=otel_trace.set_span_in_context(reserve),
            start_time=t0 + 10 * MS,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 500,
                "gen_ai.usage.output_tokens": 20,
            },
        ).end(end_time=t0 + 70 * MS)
    reserve.end(end_time=t0 + 80 * MS)
    charge = tracer.start_span("charge card", context=inside, start_time=t0 + 80 * MS)
    if failed:
        charge.set_status(Status(StatusCode.ERROR, "card declined"))
    charge.end(end_time=t0 + 100 * MS)
    root.end(end_time=t0 + 100 * MS)
    return trace_id_of(root)


@pytest.fixture
def server(make_app: Any, database_url: str) -> Iterator[str]:
    """One server with otel, jobs and the assistant on one database: the job reads what it stored."""
    settings = {"database_url": database_url, "jobs": FAST_JOBS}
    with serve_in_thread(make_app(["otel", "workspace", "jobs", "assistant"], settings)) as url:
        yield url


@pytest.fixture
def jobs(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def run(jobs: Any, params: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    submitted = jobs.post(
        "/api/jobs", json={"type": "assistant.batch_analysis", "params": params}, headers=headers or {}
    )
    assert submitted.status_code == 202, submitted.text
    deadline = time.monotonic() + 60
    while True:
        job = jobs.get(f"/api/jobs/{submitted.json()['id']}", headers=headers or {}).json()
        if job["status"] in {"SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"}:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_the_last_hours_error_traces_of_a_service_become_one_report(server: str, jobs: Any) -> None:
    wanted = {export(server, "shop", failed=True), export(server, "shop", failed=True, llm=True)}
    export(server, "shop", failed=False)  # not an error
    export(server, "stock", failed=True)  # another service
    export(server, "shop", failed=True, hours_ago=3)  # before the window
    export(server, "shop", failed=True, workspace="team-b")  # another workspace

    assert "assistant.batch_analysis" in {t["name"] for t in jobs.get("/api/jobs/types").json()["types"]}
    job = run(jobs, {"service": "shop", "status": "error", "last_minutes": 60})
    assert job["status"] == "SUCCEEDED", job
    assert job["progress"] == {"fraction": 1.0, "message": "analysed 2 of 2 traces"}
    report = job["result"]
    assert {t["trace_id"] for t in report["traces"]} == wanted and report["matched_more_than_analysed"] is False
    assert (
        report["filter"]["service"] == "shop"
        and report["filter"]["status"] == "error"
        and "start_after" in report["filter"]
    )
    one = next(t for t in report["traces"] if t["genai"] is None)
    assert one["critical_path"] == [
        {"name": "reserve", "on_path_ms": pytest.approx(80)},
        {"name": "charge card", "on_path_ms": pytest.approx(20)},
    ]
    assert one["errors"] == [{"name": "charge card", "message": "card declined"}]
    aggregate = report["aggregate"]
    assert aggregate["traces"] == 2 and aggregate["error_traces"] == 2
    assert aggregate["duration_ms"]["p50"] == pytest.approx(100)
    assert aggregate["errors"] == [{"error": "charge card: card declined", "traces": 2}]
    assert aggregate["critical_path_by_name"][0] == {
        "name": "reserve",
        "on_path_ms": pytest.approx(100),
    }  # 80 + 20 around the LLM call
    assert (
        aggregate["genai"]["llm_calls"] == 1
        and aggregate["genai"]["input_tokens"] == 500
        and aggregate["genai"]["cost"]
        == pytest.approx(float(calc_price(Usage(input_tokens=500, output_tokens=20), "gpt-4o").total_price))
    )  # priced as the trace list prices it (genai-prices, by the model's name: the span names no provider)

    team_b = run(jobs, {"status": "error"}, headers={"X-Plughost-Workspace": "team-b"})
    assert [t["service_name"] for t in team_b["result"]["traces"]] == ["shop"]  # the job reads in its own workspace


def test_a_cap_on_traces_is_reported(server: str, jobs: Any) -> None:
    for _ in range(3):
        export(server, "shop", failed=False)
    report = run(jobs, {"max_traces": 2})["result"]
    assert len(report["traces"]) == 2 and report["matched_more_than_analysed"] is True


def test_bad_parameters_are_refused_on_submit(server: str, jobs: Any) -> None:
    for params, message in [
        ({"filters": {"limit": "5"}}, "'limit' has its own field"),
        ({"filters": {"x y": "1"}}, "not a trace-list filter name"),
        ({"last_minutes": 60, "start_after": "2026-01-01T00:00:00Z"}, "last_minutes or start_after, not both"),
        ({"status": "broken"}, "status"),
    ]:
        response = jobs.post("/api/jobs", json={"type": "assistant.batch_analysis", "params": params})
        assert response.status_code == 400 and message in response.text, response.text


def test_without_the_otel_plugin_where_jobs_run_the_job_fails_saying_why(
    make_app: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGHOST_DISABLE_PLUGINS", "otel")  # the job processes' environment
    app = make_app(["jobs", "workspace", "assistant"], {"database_url": database_url, "jobs": FAST_JOBS})
    with client_for(app) as jobs:
        job = run(jobs, {})
    assert job["status"] == "FAILED" and "no trace source: enable the otel plugin" in job["error"]


def test_the_job_reads_its_workspaces_traces_with_accounts_on(make_app: Any, database_url: str, tmp_path: Path) -> None:
    """The job needs no credentials of its own: it reads the database, not the (authenticated) API."""
    env = {"PLUGHOST_DATABASE_URL": database_url, "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_SECURITY_AUTH": "users"}

    def key(name: str, workspace: str) -> dict[str, str]:
        made = CliRunner().invoke(
            build_cli(), ["keys", "add", name, "--role", "editor", "--workspace", workspace], env=env
        )
        assert made.exit_code == 0, made.output
        return {"Authorization": f"Bearer {made.output.strip()}"}

    team_a, team_b = key("team-a-analyst", "team-a"), key("team-b-analyst", "team-b")
    settings = {"database_url": database_url, "data_dir": tmp_path, "jobs": FAST_JOBS, "security": {"auth": "users"}}
    plugins = ["otel", "workspace", "jobs", "assistant", "security"]
    with serve_in_thread(make_app(plugins, settings)) as url, httpx.Client(base_url=url, timeout=30) as jobs:
        with exporting(url, "shop", headers=team_a) as tracer:
            mine = _checkout(tracer, failed=True, hours_ago=0, llm=False)
        with exporting(url, "shop", headers=team_b) as tracer:
            _checkout(tracer, failed=True, hours_ago=0, llm=False)
        job = run(jobs, {"status": "error"}, headers=team_a)
    assert job["status"] == "SUCCEEDED", job
    assert [trace["trace_id"] for trace in job["result"]["traces"]] == [mine]
