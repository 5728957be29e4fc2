"""The otel job types run by the real jobs plugin (worker subprocesses) on traces ingested over OTLP/HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.testing import client_for, free_port
from plugins.otel.decode import JSON, parse

DAY_NS = 86_400 * 10**9
JOBS = {"heartbeat_seconds": 0.2, "lease_seconds": 10.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}


@pytest.fixture
def start(make_app: Any) -> Iterator[Any]:
    clients: list[Any] = []

    def started(database_url: str) -> Any:
        app = make_app(
            ["otel", "jobs", "workspace"],
            {"database_url": database_url, "otel": {"grpc_address": f"127.0.0.1:{free_port()}"}, "jobs": JOBS},
        )
        clients.append(client_for(app))
        return clients[-1].__enter__()

    yield started
    for client in clients:
        client.__exit__(None, None, None)


def otlp_trace(index: int, *, ended_days_ago: float, service: str = "api", spans: int = 2) -> dict[str, Any]:
    """OTLP/JSON for trace ``index``: a root and children, the last ending ``ended_days_ago`` days ago."""
    end = time.time_ns() - int(ended_days_ago * DAY_NS)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
                "scopeSpans": [
                    {
                        "scope": {"name": "jobs-test", "version": "1"},
                        "spans": [
                            {
                                "traceId": f"{index:032x}",
                                "spanId": f"{span + 1:016x}",
                                **({"parentSpanId": f"{1:016x}"} if span else {}),
                                "name": "root" if span == 0 else f"child-{span}",
                                "startTimeUnixNano": str(end - 10**9),
                                "endTimeUnixNano": str(end - (span * 1000)),
                                "attributes": [{"key": "n", "value": {"intValue": str(span)}}],
                            }
                            for span in range(spans)
                        ],
                    }
                ],
            }
        ]
    }


def ingest(client: Any, document: dict[str, Any], workspace: str = "default", project: str = "default") -> None:
    response = client.post(
        "/v1/traces", json=document, headers={"X-Plughost-Workspace": workspace, "X-Plughost-Project": project}
    )
    assert response.status_code == 200, response.text


def run_job(client: Any, type: str, params: dict[str, Any], workspace: str = "default", with_job: bool = False) -> Any:
    """The succeeded job's result (and, ``with_job``, the job too)."""
    headers = {"X-Plughost-Workspace": workspace}
    response = client.post("/api/jobs", json={"type": type, "params": params}, headers=headers)
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/api/jobs/{response.json()['id']}", headers=headers).json()
        if job["status"] in ("SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"):
            assert job["status"] == "SUCCEEDED", job
            return (job["result"], job) if with_job else job["result"]
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def trace_ids(client: Any, workspace: str) -> set[int]:
    listed = client.get("/api/otel/traces", headers={"X-Plughost-Workspace": workspace}).json()["traces"]
    return {int(t["trace_id"], 16) for t in listed}


def test_retention_deletes_old_traces_per_workspace_and_project(start: Any, database_url: str) -> None:
    client = start(database_url)
    ingest(client, otlp_trace(1, ended_days_ago=40), "team-a", "shop")
    ingest(client, otlp_trace(2, ended_days_ago=40), "team-a", "ml")
    ingest(client, otlp_trace(3, ended_days_ago=1), "team-a", "shop")
    ingest(client, otlp_trace(4, ended_days_ago=29.9), "team-a", "shop")
    ingest(client, otlp_trace(5, ended_days_ago=40), "default", "shop")

    result = run_job(client, "otel.retention", {"days": 30, "project": "shop"}, "team-a")
    assert (result["deleted_traces"], result["deleted_spans"]) == (1, 2)
    assert trace_ids(client, "team-a") == {2, 3, 4}

    result = run_job(client, "otel.retention", {"days": 30}, "team-a")
    assert (result["deleted_traces"], result["deleted_spans"]) == (1, 2)
    assert trace_ids(client, "team-a") == {3, 4}
    assert trace_ids(client, "default") == {5}  # another workspace is untouched
    assert client.get(f"/api/otel/traces/{1:032x}", headers={"X-Plughost-Workspace": "team-a"}).status_code == 404


def test_the_types_are_listed_and_bad_parameters_refused(start: Any, sqlite_url: str) -> None:
    client = start(sqlite_url)
    types = {t["name"]: t for t in client.get("/api/jobs/types").json()["types"]}
    assert {"otel.retention", "otel.export"} <= set(types) and types["otel.retention"]["plugin"] == "otel"
    assert types["otel.retention"]["parameters"]["required"] == ["days"]
    response = client.post("/api/jobs", json={"type": "otel.retention", "params": {"days": 0}})
    assert response.status_code == 400 and "days" in response.text


def test_export_writes_matching_traces_as_otlp_json_lines_that_read_back_losslessly(
    start: Any, sqlite_url: str
) -> None:
    client = start(sqlite_url)
    sent = {
        index: otlp_trace(index, ended_days_ago=index, service="api" if index % 2 else "worker", spans=3)
        for index in range(1, 6)
    }
    for document in sent.values():
        ingest(client, document, "team-a")
    ingest(client, otlp_trace(9, ended_days_ago=1), "team-b")

    headers = {"X-Plughost-Workspace": "team-a"}
    result, job = run_job(client, "otel.export", {"service": "api"}, "team-a", with_job=True)
    assert result["artifact"] == "traces.jsonl" and "path" not in result
    assert result["download_url"] == f"/api/jobs/{job['id']}/artifacts/traces.jsonl"
    assert job["progress"] == {"fraction": 1.0, "message": "exported 3 traces"}
    download = client.get(result["download_url"], headers=headers)
    assert download.status_code == 200, download.text
    lines = download.text.splitlines()
    assert (result["traces"], result["spans"], result["bytes"], len(lines)) == (3, 9, len(download.content), 3)
    assert client.get(result["download_url"]).status_code == 404  # another workspace cannot download it
    exported = [parse(line.encode(), JSON) for line in lines]
    newest_first = [1, 3, 5]
    for request, index in zip(exported, newest_first, strict=True):
        assert request == parse(json.dumps(sent[index]).encode(), JSON)
    assert (
        json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == f"{1:032x}"
    )  # hex, as OTLP/JSON

    limited = run_job(client, "otel.export", {"max_traces": 2}, "team-a")
    assert limited["traces"] == 2 and limited["download_url"] != result["download_url"]
    assert len(client.get(limited["download_url"], headers=headers).text.splitlines()) == 2


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'plughost.db'}"


@pytest.mark.parametrize("retention_days", [None, 30])
def test_retention_days_declares_a_daily_retention_schedule_at_start_up(
    make_app: Any, retention_days: int | None
) -> None:
    otel: dict[str, Any] = {"grpc_address": f"127.0.0.1:{free_port()}", "retention_days": retention_days}
    app = make_app(["otel", "jobs", "workspace"], {"otel": otel, "jobs": {**JOBS, "workers": 0}})
    with client_for(app) as client:
        listed = client.get("/api/jobs/schedules")
    assert listed.status_code == 200, listed.text
    declared = [(s["name"], s["type"], s["params"], s["cron"], s["declared_by"]) for s in listed.json()["schedules"]]
    expected = (
        []
        if retention_days is None
        else [("otel.retention", "otel.retention", {"days": 30, "project": None}, "17 3 * * *", "otel")]
    )
    assert declared == expected


def otlp_logs(*records: tuple[int | None, float]) -> dict[str, Any]:
    """OTLP/JSON log records: (trace index or None for none, days ago)."""
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                "scopeLogs": [
                    {
                        "scope": {"name": "jobs-test"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(time.time_ns() - int(days_ago * DAY_NS)),
                                "body": {"stringValue": f"line {position}"},
                                **({"traceId": f"{index:032x}", "spanId": f"{1:016x}"} if index else {}),
                            }
                            for position, (index, days_ago) in enumerate(records)
                        ],
                    }
                ],
            }
        ]
    }


def test_retention_and_export_cover_log_records(start: Any, sqlite_url: str) -> None:
    client = start(sqlite_url)
    ingest(client, otlp_trace(1, ended_days_ago=40))
    ingest(client, otlp_trace(2, ended_days_ago=1))
    response = client.post("/v1/logs", json=otlp_logs((1, 40), (2, 1), (2, 1), (None, 40), (None, 1)))
    assert response.status_code == 200, response.text

    exported = run_job(client, "otel.export", {}, "default")
    assert exported["log_records"] == 3  # the records of the exported traces (not those outside any trace)
    newest, oldest = client.get(exported["logs_download_url"]).text.splitlines()
    assert json.loads(oldest)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] == f"{1:032x}"
    records = json.loads(newest)["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert [(r["traceId"], r["body"]["stringValue"]) for r in records] == [
        (f"{2:032x}", "line 1"),
        (f"{2:032x}", "line 2"),
    ]

    result = run_job(client, "otel.retention", {"days": 30}, "default")
    assert (result["deleted_traces"], result["deleted_logs"]) == (1, 2)  # trace 1's record, and the old one outside
    assert len(client.get(f"/api/otel/traces/{2:032x}").json()["logs"]) == 2
