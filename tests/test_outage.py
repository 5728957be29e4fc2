"""A database outage under a running server: every plugin's routes answer 503 with ``Retry-After`` and
the cause (never a 500), keep-alive connections stay honest, and service comes back by itself.

PostgreSQL: the session's own cluster (``postgresql_cluster``), really stopped and started.
SQLite: a real full disk, a small tmpfs mounted for the test (needs root, as CI runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from click.testing import CliRunner

from core.cli import build_cli
from core.testing import PostgreSQLCluster, serve_in_thread

TRACE_ID = "5b8efff798038103d269b633813fc60c"
OTLP_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "outage"}}]},
            "scopeSpans": [
                {
                    "spans": [
                        {
                            "traceId": TRACE_ID,
                            "spanId": "eee19b7ec3c1b174",
                            "name": "root",
                            "startTimeUnixNano": "1700000000000000000",
                            "endTimeUnixNano": "1700000001000000000",
                        }
                    ]
                }
            ],
        }
    ]
}
CHAT = {"model": "nowhere", "messages": [{"role": "user", "content": "hi"}]}

ROUTES: list[tuple[str, str, dict[str, Any] | None, int]] = [
    # method, path, JSON body, status once the database is back
    ("GET", "/api/otel/traces", None, 200),
    ("GET", f"/api/otel/traces/{TRACE_ID}", None, 200),
    ("POST", "/v1/traces", OTLP_JSON, 200),
    ("GET", "/api/jobs", None, 200),
    ("POST", "/api/jobs", {"type": "otel.retention", "params": {"days": 30}}, 202),
    ("GET", "/api/jobs/schedules", None, 200),
    ("GET", f"/api/jobs/{uuid.uuid4().hex}", None, 404),
    ("GET", "/api/gateway/secrets", None, 200),
    ("GET", "/api/gateway/endpoints", None, 200),
    ("GET", "/gateway/v1/models", None, 200),
    ("GET", "/gateway/v1/batches", None, 200),
    ("POST", "/gateway/v1/chat/completions", CHAT, 404),
    ("GET", "/api/assistant/conversations", None, 200),
]


def grpc_export(target: str) -> None:
    """One span over OTLP/gRPC, as an exporter sends it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = uuid.uuid4().bytes, b"\1" * 8, "over grpc"
    with grpc.insecure_channel(target) as channel:
        channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(
            request.SerializeToString(), timeout=30
        )


def app_settings(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url, "jobs": {"workers": 0}}


class HonestClient:
    """One keep-alive connection (httpx, one connection at most): after each answer, the next request
    goes over the same connection unless the answer said ``Connection: close``."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, limits=httpx.Limits(max_connections=1), timeout=30)
        self.connection: Any = None
        self.closed = False

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        response = self.client.request(method, path, json=body)
        connection = response.extensions["network_stream"]  # one object per connection
        if self.connection is not None and not self.closed:
            assert connection is self.connection, f"{method} {path}: the previous answer's connection was dropped"
        self.connection = connection
        self.closed = response.headers.get("connection", "").lower() == "close"
        return response


def test_postgresql_outage_is_a_503_on_every_route_and_service_comes_back(
    make_app: Any, postgresql_cluster: PostgreSQLCluster, stoppable_postgresql_url: str
) -> None:
    with serve_in_thread(make_app(None, app_settings(stoppable_postgresql_url))) as base:
        client = HonestClient(base)
        for method, path, body, _ in ROUTES:  # every pool holds connections that the outage will cut
            client.request(method, path, body)
        with postgresql_cluster.stopped():
            for method, path, body, _ in ROUTES:
                for _attempt in range(2):  # the first use of a cut connection, and a fresh refused one
                    down = client.request(method, path, body)
                    assert down.status_code == 503, (method, path, down.status_code, down.text)
                    assert down.headers["retry-after"] == "5", (method, path)
                    if path != "/v1/traces":  # OTLP answers a google.rpc.Status, with the same words
                        assert down.json()["unavailable"] == "database", (method, path, down.text)
                    assert "the database is unavailable" in down.text, (method, path, down.text)
            refused = client.request("GET", "/api/otel/traces").json()
            assert refused["cause"] == "refused" and "refused the connection" in refused["detail"]
            with pytest.raises(grpc.RpcError) as unavailable:
                grpc_export(os.environ["PLUGHOST_OTEL_GRPC_ADDRESS"])
            assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "refused the connection" in (unavailable.value.details() or "")
            assert client.request("GET", "/health").status_code == 200
        for method, path, body, status in ROUTES:
            back = client.request(method, path, body)
            assert back.status_code == status, (method, path, back.status_code, back.text)
        grpc_export(os.environ["PLUGHOST_OTEL_GRPC_ADDRESS"])


def test_with_accounts_an_outage_is_a_503_for_a_key_a_session_and_a_gateway_call_never_a_500(
    make_app: Any, postgresql_cluster: PostgreSQLCluster, stoppable_postgresql_url: str, tmp_path: Path
) -> None:
    """With accounts on, the security middleware reads keys, sessions and a key's limits itself, before any
    route: an outage there is the same JSON 503 (in the client's format on the gateway), never a 500, and
    nothing is let through unchecked."""
    env = {
        "PLUGHOST_DATABASE_URL": stoppable_postgresql_url,
        "PLUGHOST_DATA_DIR": str(tmp_path),
        "PLUGHOST_SECURITY_AUTH": "users",
    }

    def key(*args: str) -> dict[str, str]:
        made = CliRunner().invoke(build_cli(), ["keys", "add", *args], env=env)
        assert made.exit_code == 0, made.output
        return {"Authorization": f"Bearer {made.output.strip()}"}

    limited, cold = key("limited", "--role", "editor", "--rpm", "100"), key("cold", "--role", "viewer")
    settings = {
        **app_settings(stoppable_postgresql_url),
        "data_dir": tmp_path,
        "security": {"auth": "users", "credential_cache_seconds": 300},
        "gateway": {"kek": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
    }
    completions = "/gateway/v1/chat/completions"
    with serve_in_thread(make_app(["security", "workspace", "otel", "gateway"], settings)) as base:
        client = httpx.Client(base_url=base, timeout=30)
        assert client.post(completions, json=CHAT, headers=limited).status_code == 404  # known from now on
        with postgresql_cluster.stopped():
            for _attempt in range(2):  # the first use of a cut connection, and a fresh refused one
                answers = {
                    "a key's limits": client.post(completions, json=CHAT, headers=limited),
                    "a key not yet known": client.get("/api/otel/traces", headers=cold),
                    "a session": client.get("/api/otel/traces", headers={"Cookie": "plughost_session=" + "s" * 43}),
                }
                for what, down in answers.items():
                    assert down.status_code == 503 and down.headers["retry-after"] == "5", (what, down.text)
                    assert "the database is unavailable" in down.text, (what, down.text)
                assert "error" in answers["a key's limits"].json()  # OpenAI's error format, as the SDK reads it
        assert client.get("/api/otel/traces", headers=cold).status_code == 200


def test_a_read_only_postgresql_is_a_503_that_says_so(
    make_app: Any, postgresql_cluster: PostgreSQLCluster, stoppable_postgresql_url: str
) -> None:
    name = stoppable_postgresql_url.rsplit("/", 1)[1]
    with serve_in_thread(make_app(["jobs", "otel"], app_settings(stoppable_postgresql_url))) as base:
        client = HonestClient(base)
        postgresql_cluster.admin(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = on',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        try:
            refused = client.request("POST", "/api/jobs", {"type": "otel.retention", "params": {"days": 30}})
            if refused.status_code != 503:  # the first use of a terminated connection; the next is read-only
                refused = client.request("POST", "/api/jobs", {"type": "otel.retention", "params": {"days": 30}})
            assert refused.status_code == 503 and refused.json()["cause"] == "read-only", refused.text
            assert "read-only" in refused.json()["detail"]
            assert client.request("GET", "/api/jobs").status_code == 200  # reads still work
        finally:
            postgresql_cluster.admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')


@contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path``: a disk that really fills up."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs (needs root): {mounted.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a file on ``disk`` until it is full; return it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_under_sqlite_is_a_503_that_names_the_disk(make_app: Any, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        url = f"sqlite+aiosqlite:///{disk / 'plughost.db'}"
        with serve_in_thread(make_app(["jobs", "otel"], app_settings(url))) as base:
            client = HonestClient(base)
            assert client.request("POST", "/v1/traces", OTLP_JSON).status_code == 200
            filler = fill(disk)
            job = {"type": "otel.retention", "params": {"days": 30}}
            new_trace = json.loads(json.dumps(OTLP_JSON).replace(TRACE_ID, uuid.uuid4().hex))
            for method, path, body in (("POST", "/api/jobs", job), ("POST", "/v1/traces", new_trace)):
                full = client.request(method, path, body)
                assert full.status_code == 503, (path, full.status_code, full.text)
                assert full.headers["retry-after"] == "5"
                assert "disk is full" in full.text, full.text
            filler.unlink()
            assert client.request("POST", "/api/jobs", job).status_code == 202
            assert client.request("POST", "/v1/traces", new_trace).status_code == 200


def test_the_console_shows_a_banner_while_the_database_is_away_and_recovers_by_itself(
    make_app: Any,
    postgresql_cluster: PostgreSQLCluster,
    stoppable_postgresql_url: str,
    browser_page: Any,
    screenshot: Any,
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with serve_in_thread(make_app(["jobs", "otel"], app_settings(stoppable_postgresql_url))) as base:
        with postgresql_cluster.stopped():
            page.goto(f"{base}/jobs")
            banner = page.locator("#database-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("The database is unavailable; retrying")
            expect(banner).to_contain_text("It refused the connection (is it running?).")
            screenshot(page, "database-banner")
        expect(banner).to_be_hidden(timeout=30_000)  # the page's read was retried after Retry-After
        assert page.locator(".error:visible").count() == 0
