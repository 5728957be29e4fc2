"""Accounts (PLUGHOST_SECURITY_AUTH=users) through real servers on both stores: keys and users made with the CLI
and the admin API, bearer checks on every door (the API, OTLP over HTTP and gRPC with the OpenTelemetry SDK's
exporters), roles per workspace, and keys bound to one workspace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from core.cli import build_cli
from core.testing import free_port, serve_in_thread

PLUGINS = ["security", "workspace", "otel"]


class Deployment:
    """One database and data dir: the CLI runs on them as an operator would, servers start on them."""

    def __init__(self, database_url: str, data_dir: Path, make_app: Any) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.make_app = make_app
        self.env = {
            "PLUGHOST_DATABASE_URL": database_url,
            "PLUGHOST_DATA_DIR": str(data_dir),
            "PLUGHOST_SECURITY_AUTH": "users",
        }

    def cli(self, *args: str, input: str | None = None, ok: bool = True) -> str:
        result = CliRunner().invoke(build_cli(), list(args), input=input, env=self.env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result.output

    def add_key(self, name: str, role: str, workspace: str | None = None) -> str:
        args = ["keys", "add", name, "--role", role, *(["--workspace", workspace] if workspace else [])]
        return self.cli(*args).strip()

    @contextmanager
    def server(self, plugins: tuple[str, ...] = (), **security: Any) -> Iterator[tuple[str, str]]:
        """A live server with accounts on, and ``plugins`` besides security, workspace and otel:
        (its base URL, its OTLP/gRPC target)."""
        grpc_target = f"127.0.0.1:{free_port()}"
        settings = {
            "database_url": self.database_url,
            "data_dir": self.data_dir,
            "security": {"auth": "users", **security},
            "otel": {"grpc_address": grpc_target},
        }
        with serve_in_thread(self.make_app([*PLUGINS, *plugins], settings)) as url:
            yield url, grpc_target


@pytest.fixture
def deployment(database_url: str, tmp_path: Path, make_app: Any) -> Deployment:
    return Deployment(database_url, tmp_path / "data", make_app)


def bearer(key: str, workspace: str | None = None) -> dict[str, str]:
    """Headers (lower-case, as gRPC metadata must be) presenting ``key``, naming ``workspace``."""
    return {"authorization": f"Bearer {key}", **({"x-plughost-workspace": workspace} if workspace else {})}


def export_trace(exporter: SpanExporter, name: str) -> str:
    """One span made by the OpenTelemetry SDK and sent through ``exporter``; returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "accounts-test"}))
    results: list[SpanExportResult] = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span: Any) -> None:
            results.append(exporter.export((span,)))

    provider.add_span_processor(Recording(exporter))
    with provider.get_tracer("accounts-test").start_as_current_span(name) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    assert results == [SpanExportResult.SUCCESS]
    return trace_id


def trace_ids(base: str, key: str, workspace: str | None = None) -> set[str]:
    response = httpx.get(f"{base}/api/otel/traces", headers=bearer(key, workspace))
    assert response.status_code == 200, response.text
    return {trace["trace_id"] for trace in response.json()["traces"]}


def wait_for_traces(base: str, key: str, workspace: str | None, expected: set[str]) -> None:
    deadline = time.monotonic() + 30
    while trace_ids(base, key, workspace) != expected:
        assert time.monotonic() < deadline, (trace_ids(base, key, workspace), expected)
        time.sleep(0.05)


def test_the_cli_prints_a_key_once_and_lists_keys_and_users_without_secrets(deployment: Deployment) -> None:
    key = deployment.add_key("ci-ingest", "editor", "team-a")
    assert key.startswith("ph_") and len(key) > 40
    deployment.cli("users", "add", "alice", "--role", "viewer", "--password-stdin", input="correct horse battery\n")
    keys = deployment.cli("keys", "list")
    assert "ci-ingest" in keys and key[:11] in keys and key not in keys and "editor in team-a" in keys
    listing = deployment.cli("keys", "list", "--json")
    assert key[11:] not in listing and "hash" not in listing
    users = deployment.cli("users", "list", "--json")
    assert '"alice"' in users and "viewer" in users and "argon2" not in users and "correct horse" not in users
    assert "exists" in deployment.cli("keys", "add", "ci-ingest", "--role", "viewer", ok=False)
    assert "password" in deployment.cli(
        "users", "add", "bob", "--role", "viewer", "--password-stdin", input="short\n", ok=False
    )
    assert "role" in deployment.cli("keys", "add", "x", "--role", "owner", ok=False)
    assert "invalid workspace" in deployment.cli("keys", "add", "x", "--role", "viewer", "--workspace", "A_B", ok=False)
    deployment.cli("keys", "disable", "ci-ingest")
    assert "(disabled)" in deployment.cli("keys", "list")
    deployment.cli("keys", "delete", "ci-ingest")
    assert "no keys" in deployment.cli("keys", "list")
    assert "no key 'ci-ingest'" in deployment.cli("keys", "delete", "ci-ingest", ok=False)
    accounts_off = {**deployment.env, "PLUGHOST_SECURITY_AUTH": "token"}
    listed = CliRunner().invoke(build_cli(), ["keys", "list"], env=accounts_off)
    assert "accounts are off until the server runs with PLUGHOST_SECURITY_AUTH=users" in listed.stderr


def test_every_api_route_needs_a_key_and_roles_decide_reads_and_writes(deployment: Deployment) -> None:
    admin = deployment.add_key("root", "admin")
    viewer = deployment.add_key("dashboards", "viewer")
    with deployment.server() as (base, _grpc):
        missing = httpx.get(f"{base}/api/otel/traces")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in missing.json()["detail"]
        assert httpx.get(f"{base}/api/otel/traces", headers=bearer("ph_00000000_" + "x" * 43)).status_code == 401
        assert httpx.get(f"{base}/api/otel/traces", headers=bearer(admin + "x")).status_code == 401
        assert httpx.get(f"{base}/openapi.json").status_code == 401
        assert httpx.get(f"{base}/health").status_code == 200  # exempt, for liveness probes

        trace_id = export_trace(HttpSpanExporter(endpoint=f"{base}/v1/traces", headers=bearer(admin)), "made")
        wait_for_traces(base, viewer, None, {trace_id})
        assert httpx.get(f"{base}/api/otel/traces/{trace_id}", headers=bearer(viewer)).status_code == 200

        refused = httpx.delete(f"{base}/api/otel/traces/{trace_id}", headers=bearer(viewer))
        assert refused.status_code == 403
        assert refused.json()["detail"] == (
            f"key 'dashboards' is viewer in workspace 'default'; DELETE /api/otel/traces/{trace_id} needs editor"
        )
        assert HttpSpanExporter(endpoint=f"{base}/v1/traces", headers=bearer(viewer)).export([]) in (
            SpanExportResult.FAILURE,
            SpanExportResult.SUCCESS,  # an empty batch is never sent
        )
        ingest = httpx.post(f"{base}/v1/traces", json={"resourceSpans": []}, headers=bearer(viewer))
        assert ingest.status_code == 403
        assert httpx.get(f"{base}/api/security/keys", headers=bearer(viewer)).json() == {"keys": []}
        assert httpx.delete(f"{base}/api/otel/traces/{trace_id}", headers=bearer(admin)).status_code == 204


def test_a_key_of_one_workspace_writes_there_over_http_and_grpc_and_reads_no_other(deployment: Deployment) -> None:
    team_a = deployment.add_key("team-a-ingest", "editor", "team-a")
    team_b = deployment.add_key("team-b-reader", "viewer", "team-b")
    admin = deployment.add_key("root", "admin")
    with deployment.server() as (base, grpc_target):
        over_http = export_trace(
            HttpSpanExporter(endpoint=f"{base}/v1/traces", headers=bearer(team_a, "team-b")), "over http"
        )
        over_grpc = export_trace(
            GrpcSpanExporter(endpoint=f"http://{grpc_target}", insecure=True, headers=bearer(team_a, "team-b")),
            "over grpc",
        )
        wait_for_traces(base, admin, "team-a", {over_http, over_grpc})
        assert trace_ids(base, admin, "team-b") == set()  # the header named team-b; the key belongs to team-a
        assert trace_ids(base, team_a, None) == {over_http, over_grpc}  # no header: its own workspace

        stolen = httpx.get(f"{base}/api/otel/traces", headers=bearer(team_a, "team-b"))
        assert stolen.status_code == 403 and "traces" not in stolen.text
        assert stolen.json()["detail"] == "key 'team-a-ingest' belongs to workspace 'team-a' only"
        deleting = httpx.delete(f"{base}/api/otel/traces/{over_http}", headers=bearer(team_a, "team-b"))
        assert deleting.status_code == 403 and "belongs to workspace 'team-a' only" in deleting.text  # nor writes
        assert httpx.get(f"{base}/api/otel/traces/{over_http}", headers=bearer(team_b)).status_code == 404
        assert httpx.get(f"{base}/api/otel/traces/{over_http}", headers=bearer(team_b, "team-a")).status_code == 403
        assert httpx.delete(f"{base}/api/otel/traces/{over_http}", headers=bearer(team_b, "team-a")).status_code == 403

        def grpc_refusal(headers: dict[str, str]) -> grpc.StatusCode:
            with grpc.insecure_channel(grpc_target) as channel:
                stub = trace_service_pb2_grpc.TraceServiceStub(channel)
                with pytest.raises(grpc.RpcError) as raised:
                    stub.Export(ExportTraceServiceRequest(), metadata=tuple(headers.items()), timeout=10)
                return raised.value.code()

        assert grpc_refusal({}) == grpc.StatusCode.UNAUTHENTICATED
        assert grpc_refusal(bearer("ph_00000000_" + "y" * 43)) == grpc.StatusCode.UNAUTHENTICATED
        assert grpc_refusal(bearer(team_b)) == grpc.StatusCode.PERMISSION_DENIED


def test_the_admin_api_shows_a_new_key_once_and_disabling_or_deleting_it_takes_effect(
    deployment: Deployment,
) -> None:
    root = deployment.add_key("root", "admin")
    with deployment.server() as (base, _grpc):
        api = httpx.Client(base_url=base, headers=bearer(root))
        made = api.post("/api/security/keys", json={"name": "etl", "role": "editor", "workspace": "team-a"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert made.json()["prefix"] == key[:11] and made.json()["roles"] == {"team-a": "editor"}
        listed = api.get("/api/security/keys").json()["keys"]
        assert [entry["name"] for entry in listed] == ["etl", "root"]
        assert key not in str(listed) and key[11:] not in str(listed) and "hash" not in str(listed)
        assert api.post("/api/security/keys", json={"name": "etl", "role": "viewer"}).status_code == 409
        bad = api.post("/api/security/keys", json={"name": "x", "role": "owner"})
        assert bad.status_code == 422 and "role" in bad.text

        assert trace_ids(base, key) == set()
        assert api.post("/api/security/keys/etl/disable").json()["disabled"] is True
        refused = httpx.get(f"{base}/api/otel/traces", headers=bearer(key))
        assert refused.status_code == 401 and refused.json()["detail"] == "API key 'etl' is disabled"
        assert api.post("/api/security/keys/etl/enable").json()["disabled"] is False
        assert trace_ids(base, key) == set()
        assert api.delete("/api/security/keys/etl").status_code == 204
        assert httpx.get(f"{base}/api/otel/traces", headers=bearer(key)).status_code == 401
        assert api.delete("/api/security/keys/etl").status_code == 404

        user = api.post(
            "/api/security/users",
            json={"name": "alice", "role": "admin", "workspace": "team-a", "password": "correct horse battery"},
        )
        assert user.status_code == 201 and "password" not in user.text and "argon2" not in user.text
        assert api.get("/api/security/users").json()["users"][0]["roles"] == {"team-a": "admin"}


def test_a_workspace_admin_manages_only_its_own_workspace(deployment: Deployment) -> None:
    team_admin = deployment.add_key("team-a-admin", "admin", "team-a")
    deployment.add_key("team-b-ingest", "editor", "team-b")
    with deployment.server() as (base, _grpc):
        api = httpx.Client(base_url=base, headers=bearer(team_admin))
        own = api.post("/api/security/keys", json={"name": "a-etl", "role": "editor", "workspace": "team-a"})
        assert own.status_code == 201
        for workspace in ("team-b", None):
            other = api.post("/api/security/keys", json={"name": "sneaky", "role": "admin", "workspace": workspace})
            assert other.status_code == 403
        assert [entry["name"] for entry in api.get("/api/security/keys").json()["keys"]] == ["a-etl", "team-a-admin"]
        assert api.delete("/api/security/keys/team-b-ingest").status_code == 404
        assert api.post("/api/security/keys/team-b-ingest/disable").status_code == 404


def test_keys_record_their_last_use_and_a_key_disabled_elsewhere_stops_within_the_cache_time(
    deployment: Deployment,
) -> None:
    key = deployment.add_key("poller", "viewer")
    with deployment.server(credential_cache_seconds=0.5) as (base, _grpc):
        assert trace_ids(base, key) == set()
        deployment.cli("keys", "disable", "poller")  # another process
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/api/otel/traces", headers=bearer(key)).status_code != 401:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    (entry,) = [e for e in _listed(deployment, "keys") if e["name"] == "poller"]
    assert entry["last_used_at"] is not None and entry["last_used_at"] > entry["created_at"]


def test_job_log_streams_and_artifact_downloads_need_a_key_of_their_workspace(
    sqlite_url: str, tmp_path: Path, make_app: Any
) -> None:
    deployment = Deployment(sqlite_url, tmp_path / "data", make_app)
    team_a = deployment.add_key("team-a-etl", "editor", "team-a")
    team_b = deployment.add_key("team-b-viewer", "viewer", "team-b")
    with deployment.server(plugins=("jobs",)) as (base, _grpc):
        api = httpx.Client(base_url=base, headers=bearer(team_a), timeout=60)
        job = api.post("/api/jobs", json={"type": "otel.export", "params": {}})
        assert job.status_code in (200, 201, 202), job.text
        job_id = job.json()["id"]
        with api.stream("GET", f"/api/jobs/{job_id}/logs", params={"follow": "true"}) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            assert "".join(stream.iter_text())  # read to the end: the stream closes when the job finishes
        deadline = time.monotonic() + 120
        while (state := api.get(f"/api/jobs/{job_id}").json())["status"] != "SUCCEEDED":
            assert state["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline, state
            time.sleep(0.2)
        download = f"/api/jobs/{job_id}/artifacts/traces.jsonl"
        assert api.get(download).status_code == 200

        for path in (f"/api/jobs/{job_id}/logs?follow=true", download):
            assert httpx.get(f"{base}{path}").status_code == 401
            assert httpx.get(f"{base}{path}", headers=bearer(team_b, "team-a")).status_code == 403
            assert httpx.get(f"{base}{path}", headers=bearer(team_b)).status_code == 404  # not in team-b


def _listed(deployment: Deployment, plural: str) -> list[dict[str, Any]]:
    import json

    return list(json.loads(deployment.cli(plural, "list", "--json"))[plural])


def test_token_and_accounts_exclude_each_other(make_app: Any) -> None:
    from core import StartupError

    with pytest.raises(StartupError, match="PLUGHOST_SECURITY_TOKEN and PLUGHOST_SECURITY_AUTH=users"):
        make_app(["security"], {"security": {"auth": "users", "token": "x" * 20}})


def test_a_principal_holds_a_role_in_several_workspaces(deployment: Deployment) -> None:
    key = deployment.add_key("multi", "viewer", "team-a")
    team_admin = deployment.add_key("team-a-admin", "admin", "team-a")
    assert "granted" in deployment.cli("keys", "grant", "multi", "--role", "editor", "--workspace", "team-b")
    with deployment.server() as (base, _grpc):
        written = httpx.post(f"{base}/v1/traces", json={"resourceSpans": []}, headers=bearer(key, "team-b"))
        assert written.status_code == 200
        assert (
            httpx.post(f"{base}/v1/traces", json={"resourceSpans": []}, headers=bearer(key, "team-a")).status_code
            == 403
        )
        assert trace_ids(base, key, "team-a") == set()
        assert httpx.get(f"{base}/api/otel/traces", headers=bearer(key)).status_code == 403  # no role in default

        api = httpx.Client(base_url=f"{base}/api/security", headers=bearer(team_admin))
        assert api.put("/keys/multi/roles/team-a", json={"role": "admin"}).status_code == 404  # also in team-b
        root = deployment.add_key("root", "admin")
        admin_api = httpx.Client(base_url=f"{base}/api/security", headers=bearer(root))
        assert admin_api.put("/keys/multi/roles/Bad_Name", json={"role": "viewer"}).status_code == 400
        revoked = admin_api.delete("/keys/multi/roles/team-b")
        assert revoked.status_code == 200 and revoked.json()["roles"] == {"team-a": "viewer"}
        refused = httpx.post(f"{base}/v1/traces", json={"resourceSpans": []}, headers=bearer(key, "team-b"))
        assert refused.status_code == 403 and "is viewer in workspace 'team-a'" in refused.json()["detail"]
        assert trace_ids(base, key) == set()  # of one workspace again: served in team-a without a header
    assert "revoked" in deployment.cli("keys", "revoke", "multi", "--workspace", "team-a")
    assert [e["roles"] for e in _listed(deployment, "keys") if e["name"] == "multi"] == [{}]


def test_ingest_checks_keys_from_a_cache_not_the_database_per_request(sqlite_url: str, tmp_path: Path) -> None:
    """The hot path: 40 OTLP requests with one key read its row at most once per cache period (5 s)."""
    from sqlalchemy import event

    from core.testing import make_app

    deployment = Deployment(sqlite_url, tmp_path / "data", None)
    key = deployment.add_key("busy-exporter", "editor", "team-a")
    settings = {"database_url": sqlite_url, "data_dir": tmp_path / "data", "security": {"auth": "users"}}
    app = make_app(PLUGINS, {**settings, "otel": {"grpc_address": ""}})
    lookups: list[str] = []
    event.listen(
        app.assembly.host.database.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: (
            lookups.append(statement) if "plughost_security_principals" in statement else None
        ),
    )
    with serve_in_thread(app) as base:
        started = time.monotonic()
        with httpx.Client(base_url=base, headers=bearer(key)) as client:
            for _ in range(40):
                assert client.post("/v1/traces", json={"resourceSpans": []}).status_code == 200
        periods = int((time.monotonic() - started) // 5) + 1
    reads = [statement for statement in lookups if statement.lstrip().upper().startswith("SELECT")]
    assert 1 <= len(reads) <= periods, reads
    assert not [s for s in lookups if s.lstrip().upper().startswith("UPDATE")][
        1:
    ]  # last use: written once, at shutdown
