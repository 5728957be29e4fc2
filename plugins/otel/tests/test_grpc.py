"""OTLP/gRPC ingest through real servers and real clients: the OpenTelemetry SDK's gRPC exporter, the rotel
collector forwarding over gRPC, and plain grpc stubs for the edges (limits, metadata, errors)."""

from __future__ import annotations

import functools
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from rotel import Config as RotelConfig
from rotel.agent import agent as rotel_agent

from core.errors import StartupError
from core.testing import free_port, postgresql_down, serve_in_thread

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = "s3cret-token-for-tests"
MiB = 1024 * 1024


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'plughost.db'}"


@pytest.fixture
def serve(make_app: Any, sqlite_url: str) -> Callable[..., Any]:
    """``serve(plugins=("otel",), database_url=..., security=..., **otel_settings)`` -> (HTTP base URL, gRPC target)."""

    @contextmanager
    def start(
        plugins: tuple[str, ...] = ("otel",),
        database_url: str | None = None,
        security: dict[str, Any] | None = None,
        **otel: Any,
    ) -> Iterator[tuple[str, str]]:
        otel.setdefault("grpc_address", f"127.0.0.1:{free_port()}")
        settings = {
            "database_url": database_url or sqlite_url,
            "otel": otel,
            **({"security": security} if security else {}),
        }
        with serve_in_thread(make_app(list(plugins), settings)) as url:
            yield url, otel["grpc_address"]

    return start


def make_trace(exporter: SpanExporter, service: str = "checkout") -> dict[str, str]:
    """A small trace made by the real SDK and exported through ``exporter``; returns its ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "1.2.3")
    with tracer.start_as_current_span(
        "POST /checkout", kind=SpanKind.SERVER, attributes={"http.status_code": 500}
    ) as root:
        with tracer.start_as_current_span("db.query", attributes={"db.rows": 3, "db.tags": ["a", "b"]}) as query:
            query.add_event("retry", {"attempt": 2})
        with tracer.start_as_current_span("charge", links=[Link(query.get_span_context(), {"why": "after"})]) as charge:
            charge.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()
    return {
        "trace_id": format(root.get_span_context().trace_id, "032x"),
        "root": format(root.get_span_context().span_id, "016x"),
        "query": format(query.get_span_context().span_id, "016x"),
        "charge": format(charge.get_span_context().span_id, "016x"),
    }


def assert_trace_came_back(base: str, made: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
    trace = httpx.get(f"{base}/api/otel/traces/{made['trace_id']}", headers=headers).json()
    assert (trace["service_name"], trace["root_name"], trace["span_count"], trace["error_count"]) == (
        "checkout",
        "POST /checkout",
        3,
        1,
    )
    spans = {span["span_id"]: span for span in trace["spans"]}
    root, query, charge = spans[made["root"]], spans[made["query"]], spans[made["charge"]]
    assert root["kind"] == "SPAN_KIND_SERVER" and root["attributes"] == {"http.status_code": 500}
    assert query["parent_span_id"] == made["root"] and query["attributes"] == {"db.rows": 3, "db.tags": ["a", "b"]}
    assert [(e["name"], e["attributes"]) for e in query["events"]] == [("retry", {"attempt": 2})]
    assert charge["status"] == {"code": "STATUS_CODE_ERROR", "message": "card declined"}
    assert charge["links"] == [{"trace_id": made["trace_id"], "span_id": made["query"], "attributes": {"why": "after"}}]
    assert root["resource"]["attributes"]["deployment.environment"] == "test"
    assert (root["scope"]["name"], root["scope"]["version"]) == ("shop.checkout", "1.2.3")
    return trace


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def export_raw(
    target: str, body: bytes, metadata: tuple[tuple[str, str], ...] = (), **options: Any
) -> ExportTraceServiceResponse:
    """Call Export with ``body`` as the request bytes, as a client would put them on the wire."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        return call(body, metadata=metadata, timeout=30, **options)


def request_with_spans(*spans: tuple[bytes, bytes, str], service: str = "raw") -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest with one span per (trace_id, span_id, name)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", service
    scope_spans = resource_spans.scope_spans.add()
    for trace_id, span_id, name in spans:
        span = scope_spans.spans.add()
        span.trace_id, span.span_id, span.name = trace_id, span_id, name
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_500_000_000
    return request


TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_sdk_grpc_exporter_spans_come_back_with_everything(
    serve: Any, database_url: str, compression: grpc.Compression
) -> None:
    with serve(database_url=database_url) as (base, target):
        exporter = GrpcSpanExporter(endpoint=f"http://{target}", insecure=True, compression=compression, timeout=10)
        made = make_trace(exporter)
        assert [t["trace_id"] for t in httpx.get(f"{base}/api/otel/traces").json()["traces"]] == [made["trace_id"]]
        assert_trace_came_back(base, made)


def test_rotel_collector_forwards_over_grpc_with_workspace_project_and_token(serve: Any, tmp_path: Path) -> None:
    """SDK --OTLP/HTTP--> rotel --OTLP/gRPC (gzip)--> plughost, with the metadata the collector is configured
    to send."""
    security = {"token": TOKEN}
    with serve(plugins=("otel", "workspace", "security"), security=security) as (base, target):
        rotel_http = f"127.0.0.1:{free_port()}"
        config = RotelConfig(
            {
                "enabled": True,
                "otlp_grpc_endpoint": f"127.0.0.1:{free_port()}",
                "otlp_http_endpoint": rotel_http,
                "pid_file": str(tmp_path / "rotel.pid"),
                "log_file": str(tmp_path / "rotel.log"),
                "batch_timeout": "50ms",
                "exporter": RotelConfig.otlp_exporter(
                    endpoint=f"http://{target}",
                    protocol="grpc",
                    compression="gzip",
                    headers={
                        "x-plughost-workspace": "team-a",
                        "x-plughost-project": "shop",
                        "authorization": f"Bearer {TOKEN}",
                    },
                ),
            }
        )
        assert config.is_active()
        # The rotel package starts this binary with ``start --daemon``; run it in the foreground, as our child.
        output = tmp_path / "rotel.out"
        with output.open("wb") as sink:
            collector = subprocess.Popen(
                [str(rotel_agent.agent_path), "start"], env=config.build_agent_environment(), stdout=sink, stderr=sink
            )
        try:
            wait_for(lambda: _accepts(rotel_http) or collector.poll() is not None, what="rotel to listen")
            assert collector.poll() is None, output.read_text()
            made = make_trace(HttpSpanExporter(endpoint=f"http://{rotel_http}/v1/traces", timeout=10))
            team_a = {"X-Plughost-Workspace": "team-a", "Authorization": f"Bearer {TOKEN}"}
            wait_for(
                lambda: httpx.get(f"{base}/api/otel/traces/{made['trace_id']}", headers=team_a).status_code == 200,
                what="the trace to arrive through rotel",
            )
        finally:
            collector.terminate()
            collector.wait(10)
        trace = assert_trace_came_back(base, made, team_a)
        assert trace["project"] == "shop"
        default = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{base}/api/otel/traces/{made['trace_id']}", headers=default).status_code == 404


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def test_workspace_and_project_come_from_metadata_and_a_bad_workspace_is_invalid_argument(serve: Any) -> None:
    body = request_with_spans((TRACE, b"\1" * 8, "root")).SerializeToString()
    with serve(plugins=("otel", "workspace")) as (base, target):
        export_raw(target, body, (("x-plughost-workspace", "team-a"), ("x-plughost-project", "shop")))
        listed = httpx.get(f"{base}/api/otel/traces", headers={"X-Plughost-Workspace": "team-a"}).json()["traces"]
        assert [(t["trace_id"], t["project"]) for t in listed] == [(TRACE.hex(), "shop")]
        assert httpx.get(f"{base}/api/otel/traces").json()["traces"] == []
        error = rpc_error(lambda: export_raw(target, body, (("x-plughost-workspace", "Bad_Name"),)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "invalid workspace name 'Bad_Name'" in error.details() and "x-plughost-workspace" in error.details()


def test_the_project_key_follows_the_project_header_setting(serve: Any) -> None:
    body = request_with_spans((TRACE, b"\1" * 8, "root")).SerializeToString()
    with serve(project_header="X-Experiment") as (base, target):
        export_raw(target, body, (("x-experiment", "ml"),))
        assert httpx.get(f"{base}/api/otel/traces").json()["traces"][0]["project"] == "ml"


def test_the_security_token_is_required_when_set(serve: Any) -> None:
    body = request_with_spans((TRACE, b"\1" * 8, "root")).SerializeToString()
    with serve(plugins=("otel", "security"), security={"token": TOKEN}) as (base, target):
        for metadata in ((), (("authorization", "Bearer wrong-token-of-some-length"),), (("authorization", TOKEN),)):
            error = rpc_error(functools.partial(export_raw, target, body, metadata))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "PLUGHOST_SECURITY_TOKEN" in error.details()
        export_raw(target, body, (("authorization", f"Bearer {TOKEN}"),))
        export_raw(target, body, (("x-api-key", TOKEN),))
        made = make_trace(
            GrpcSpanExporter(endpoint=f"http://{target}", insecure=True, headers={"authorization": f"Bearer {TOKEN}"})
        )
        traces = httpx.get(f"{base}/api/otel/traces", headers={"Authorization": f"Bearer {TOKEN}"}).json()["traces"]
        assert {t["trace_id"] for t in traces} == {TRACE.hex(), made["trace_id"]}


def test_invalid_spans_are_partial_success_and_the_same_span_is_stored_once_over_either_transport(serve: Any) -> None:
    request = request_with_spans(
        (TRACE, b"\1" * 8, "root"), (TRACE, b"\2" * 8, "child"), (b"\0" * 16, b"\3" * 8, "zero trace id")
    )
    with serve() as (base, target):
        for _ in range(2):
            answer = export_raw(target, request.SerializeToString())
            assert answer.partial_success.rejected_spans == 1
            assert "zero trace id" in answer.partial_success.error_message
        clean = export_raw(target, request_with_spans((TRACE, b"\1" * 8, "root")).SerializeToString())
        assert not clean.HasField("partial_success")
        over_http = httpx.post(
            f"{base}/v1/traces", content=request.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
        )
        assert ExportTraceServiceResponse.FromString(over_http.content).partial_success.rejected_spans == 1
        [summary] = httpx.get(f"{base}/api/otel/traces").json()["traces"]
        assert (summary["trace_id"], summary["span_count"]) == (TRACE.hex(), 2)


def test_bad_data_is_invalid_argument_and_stores_nothing(serve: Any) -> None:
    with serve() as (base, target):
        error = rpc_error(lambda: export_raw(target, b"\xff\xff\xff"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid OTLP ExportTraceServiceRequest" in error.details()
        assert httpx.get(f"{base}/api/otel/traces").json()["traces"] == []


def test_a_message_over_the_body_limit_is_refused(serve: Any) -> None:
    request = request_with_spans((TRACE, b"\1" * 8, "x" * (MiB + 100)))
    with serve(max_body_bytes=MiB) as (base, target):
        error = rpc_error(lambda: export_raw(target, request.SerializeToString()))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in error.details()
        small = request_with_spans((TRACE, b"\1" * 8, "x" * (MiB - 1000)))
        export_raw(target, small.SerializeToString())  # just under: accepted
        assert httpx.get(f"{base}/api/otel/traces").json()["traces"][0]["span_count"] == 1


BOMB_CLIENT = textwrap.dedent(
    f"""
    import sys, grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\\1" * 16, b"\\1" * 8, "\\0" * int(sys.argv[2])
    with grpc.insecure_channel(sys.argv[1], compression=grpc.Compression.Gzip) as channel:
        try:
            channel.unary_unary("{EXPORT}")(request.SerializeToString(), timeout=60)
            print("OK")
        except grpc.RpcError as error:
            print(error.code().name, error.details())
    """
)


def test_a_gzip_bomb_is_refused_without_being_inflated(serve: Any) -> None:
    """A 256 MiB message gzipped to ~256 KiB: refused once inflation reaches the limit, and this
    process (which runs the server) never holds the inflated message: its peak RSS stays far below."""
    with serve(max_body_bytes=MiB) as (base, target):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
        before = _peak_rss()
        client = subprocess.run(
            [sys.executable, "-c", BOMB_CLIENT, target, str(256 * MiB)], capture_output=True, text=True, timeout=120
        )
        assert client.stdout.startswith("RESOURCE_EXHAUSTED"), client.stdout + client.stderr
        assert "larger than max" in client.stdout
        assert _peak_rss() - before < 64 * MiB
        assert httpx.get(f"{base}/api/otel/traces").json()["traces"] == []


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def test_a_port_held_by_another_program_logs_a_warning_and_http_still_serves(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        with caplog.at_level(logging.WARNING, logger="plughost.otel"), serve(grpc_address=address) as (base, _):
            warnings = [
                r.getMessage() for r in caplog.records if r.name == "plughost.otel" and r.levelno == logging.WARNING
            ]
            assert any("PLUGHOST_OTEL_GRPC_ADDRESS" in m and address in m for m in warnings), warnings
            assert httpx.get(f"{base}/health").status_code == 200
            made = make_trace(HttpSpanExporter(endpoint=f"{base}/v1/traces", timeout=10))
            assert_trace_came_back(base, made)


def test_an_empty_address_turns_grpc_off_and_a_bad_one_stops_start_up(
    make_app: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(["otel"], {"database_url": sqlite_url, "otel": {"grpc_address": ""}})
    before = _listening_ports(os.getpid())
    with serve_in_thread(app) as base:
        assert _listening_ports(os.getpid()) - before == {int(base.rsplit(":", 1)[1])}  # HTTP only
    monkeypatch.setenv("PLUGHOST_OTEL_GRPC_ADDRESS", "localhost")
    with pytest.raises(StartupError, match="PLUGHOST_OTEL_GRPC_ADDRESS.*is not host:port"):
        make_app(["otel"], {"database_url": sqlite_url})


def _listening_ports(pid: int) -> set[int]:
    """TCP ports on which ``pid`` holds a listening socket."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _listeners_on(port: int) -> int:
    return sum(
        1
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(table).read_text().splitlines()[1:]
        if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port
    )


def test_the_workers_of_one_server_share_the_grpc_port(tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PLUGHOST_PLUGINS": "otel",
        "PLUGHOST_DATA_DIR": str(tmp_path / "data"),
        "PLUGHOST_OTEL_GRPC_ADDRESS": f"127.0.0.1:{grpc_port}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--workers", "2", "--port", str(http_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: _listeners_on(grpc_port) == 2 or server.poll() is not None,
            timeout=60,
            what="both workers to listen",
        )
        assert server.poll() is None
        traces = set()
        for index in range(1, 9):  # a new connection each time: the kernel spreads them over the workers
            trace_id = index.to_bytes(16, "big")
            export_raw(f"127.0.0.1:{grpc_port}", request_with_spans((trace_id, b"\1" * 8, "root")).SerializeToString())
            traces.add(trace_id.hex())
        listed = httpx.get(f"http://127.0.0.1:{http_port}/api/otel/traces").json()["traces"]
        assert {t["trace_id"] for t in listed} == traces
    finally:
        os.killpg(server.pid, 15)
        output, _ = server.communicate(timeout=30)
    assert "PLUGHOST_OTEL_GRPC_ADDRESS" not in output, output


def test_store_down_answers_unavailable_and_the_sdk_exporter_retries_until_stored(
    serve: Any, postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(database_url=postgresql_url) as (base, target):
        first = make_trace(GrpcSpanExporter(endpoint=f"http://{target}", insecure=True, timeout=10))
        made: dict[str, str] = {}
        with postgresql_down(postgresql_url), caplog.at_level(logging.WARNING, logger="plughost.otel"):
            exporter = GrpcSpanExporter(endpoint=f"http://{target}", insecure=True, timeout=30)
            exporting = threading.Thread(target=lambda: made.update(make_trace(exporter)))
            exporting.start()
            wait_for(
                lambda: any("could not store" in r.getMessage() for r in caplog.records),
                what="UNAVAILABLE to be answered",
            )
        exporting.join(60)
        listed = {t["trace_id"] for t in httpx.get(f"{base}/api/otel/traces").json()["traces"]}
        assert listed == {first["trace_id"], made["trace_id"]}
        assert_trace_came_back(base, made)
