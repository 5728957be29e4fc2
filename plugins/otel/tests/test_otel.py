"""The otel plugin through a real server, with the OpenTelemetry SDK's own exporter, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from core.testing import assert_plugin_contract, postgresql_down, serve_in_thread

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture
def serve(make_app: Any, database_url: str) -> Any:
    """``serve(plugins=("otel",), **otel_settings)``: a live server on this test's database."""

    def start(plugins: tuple[str, ...] = ("otel",), **settings: Any) -> Any:
        return serve_in_thread(make_app(list(plugins), {"database_url": database_url, "otel": settings}))

    return start


@pytest.fixture
def base(serve: Any) -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture(scope="module")
def refusing_base(module_make_app: Any) -> Iterator[str]:
    """One live server on SQLite for this module's refused requests: nothing reaches the store, so no
    store changes the answer and the tests share it."""
    with serve_in_thread(module_make_app(["otel"])) as url:
        yield url


def export_with_sdk(base: str, compression: Compression, service: str = "checkout") -> dict[str, Any]:
    """Make a small trace with the real SDK and export it through OTLPSpanExporter; return what was made."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", compression=compression, timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "1.2.3")
    with tracer.start_as_current_span(
        "POST /checkout", kind=SpanKind.SERVER, attributes={"http.status_code": 500}
    ) as root:
        with tracer.start_as_current_span(
            "db.query", attributes={"db.rows": 3, "db.ok": True, "db.ratio": 0.5, "db.tags": ["a", "b"]}
        ) as query:
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


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate], ids=["plain", "gzip", "deflate"]
)
def test_sdk_exporter_spans_come_back_with_everything(base: str, compression: Compression) -> None:
    made = export_with_sdk(base, compression)
    listed = httpx.get(f"{base}/api/otel/traces").json()["traces"]
    assert [t["trace_id"] for t in listed] == [made["trace_id"]]
    summary = listed[0]
    assert (
        summary["service_name"],
        summary["root_name"],
        summary["span_count"],
        summary["error_count"],
        summary["status"],
    ) == ("checkout", "POST /checkout", 3, 1, "error")
    trace = httpx.get(f"{base}/api/otel/traces/{made['trace_id']}").json()
    spans = {span["span_id"]: span for span in trace["spans"]}
    root, query, charge = spans[made["root"]], spans[made["query"]], spans[made["charge"]]
    assert root["parent_span_id"] is None and root["kind"] == "SPAN_KIND_SERVER"
    assert root["attributes"] == {"http.status_code": 500}
    assert query["parent_span_id"] == made["root"]
    assert query["attributes"] == {"db.rows": 3, "db.ok": True, "db.ratio": 0.5, "db.tags": ["a", "b"]}
    assert [(e["name"], e["attributes"]) for e in query["events"]] == [("retry", {"attempt": 2})]
    assert charge["status"] == {"code": "STATUS_CODE_ERROR", "message": "card declined"}
    assert charge["links"] == [{"trace_id": made["trace_id"], "span_id": made["query"], "attributes": {"why": "after"}}]
    assert root["resource"]["attributes"]["deployment.environment"] == "test"
    assert (root["scope"]["name"], root["scope"]["version"]) == ("shop.checkout", "1.2.3")
    assert trace["tree"] == [
        {
            "span_id": made["root"],
            "name": "POST /checkout",
            "service_name": "checkout",
            "duration_ms": root["duration_ms"],
            "status": "STATUS_CODE_UNSET",
            "children": [
                {
                    "span_id": made["query"],
                    "name": "db.query",
                    "service_name": "checkout",
                    "duration_ms": query["duration_ms"],
                    "status": "STATUS_CODE_UNSET",
                    "children": [],
                },
                {
                    "span_id": made["charge"],
                    "name": "charge",
                    "service_name": "checkout",
                    "duration_ms": charge["duration_ms"],
                    "status": "STATUS_CODE_ERROR",
                    "children": [],
                },
            ],
        }
    ]


OTLP_JSON: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "handmade", "version": "0.1"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "root",
                            "kind": 2,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [{"key": "big", "value": {"intValue": "9007199254740993"}}],
                            "status": {"code": 1},
                        },
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b173",
                            "parentSpanId": "eee19b7ec3c1b174",
                            "name": "child",
                            "startTimeUnixNano": "1544712660100000000",
                            "endTimeUnixNano": "1544712660300000000",
                        },
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_with_hex_ids_is_read_correctly_and_back_losslessly(base: str) -> None:
    response = httpx.post(f"{base}/v1/traces", json=OTLP_JSON)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {}
    trace = httpx.get(f"{base}/api/otel/traces/5b8efff798038103d269b633813fc60c").json()
    root = next(span for span in trace["spans"] if span["name"] == "root")
    assert root["span_id"] == "eee19b7ec3c1b174"  # 8 bytes, not the 24-byte misreading of hex as base64
    assert root["attributes"] == {"big": 9007199254740993}
    sent = OTLP_JSON["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert root["otlp"]["span"] == {**sent, "kind": "SPAN_KIND_SERVER", "status": {"code": "STATUS_CODE_OK"}}
    assert trace["duration_ms"] == 1000.0 and trace["tree"][0]["children"][0]["name"] == "child"


def test_raw_deflate_and_zlib_deflate_are_both_accepted(base: str) -> None:
    payload = json.dumps(OTLP_JSON).encode()
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for body in (zlib.compress(payload), raw.compress(payload) + raw.flush()):
        response = httpx.post(f"{base}/v1/traces", content=body, headers={**JSON_TYPE, "Content-Encoding": "deflate"})
        assert response.status_code == 200, response.text
    assert httpx.get(f"{base}/api/otel/traces").json()["traces"][0]["span_count"] == 2


def gzip_bomb(inflated: int = 1024**3, piece: int = 1024**2) -> bytes:
    """One gzip member that inflates to ``inflated`` zero bytes, made of one compressed ``piece`` repeated:
    each piece ends with a full flush, which resets the compressor, so that every piece compresses to the
    same bytes (``gzip.compress`` of the whole takes 6 s of CPU; this, a twentieth of it)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(piece)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH) == block
    crc = 0
    for _ in range(inflated // piece):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name or time, best compression
    return header + block * (inflated // piece) + deflate.flush() + struct.pack("<II", crc, inflated % 2**32)


def test_a_gzip_bomb_is_refused_without_being_inflated(refusing_base: str) -> None:
    base = refusing_base
    bomb = gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    response = httpx.post(
        f"{base}/v1/traces", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=30
    )
    assert response.status_code == 413
    assert "PLUGHOST_OTEL_MAX_DECOMPRESSED_BYTES" in status_pb2.Status.FromString(response.content).message


def test_body_over_the_limit_is_refused(make_app: Any, sqlite_url: str) -> None:
    app = make_app(["otel"], {"database_url": sqlite_url, "otel": {"max_body_bytes": 4096}})
    with serve_in_thread(app) as url:
        response = httpx.post(f"{url}/v1/traces", content=b"\0" * 5000, headers=JSON_TYPE)
    assert response.status_code == 413
    assert "PLUGHOST_OTEL_MAX_BODY_BYTES" in response.json()["message"]


@pytest.mark.parametrize(
    "headers, body, status, says",
    [
        ({"Content-Type": "text/plain"}, b"{}", 415, "send application/x-protobuf or application/json"),
        ({**JSON_TYPE, "Content-Encoding": "br"}, b"{}", 415, "unsupported Content-Encoding 'br'"),
        (PROTOBUF, b"\xff\xff\xff", 400, "not a valid OTLP ExportTraceServiceRequest"),
        (JSON_TYPE, b"{not json", 400, "not a valid OTLP ExportTraceServiceRequest"),
        (
            JSON_TYPE,
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}).encode(),
            400,
            "traceId 'zz' is not a hex string",
        ),
        (JSON_TYPE, b'{"resourceSpans": 5}', 400, "repeated field resourceSpans must be in [] which is 5"),
        (JSON_TYPE, b'{"resourceSpans": [5]}', 400, "Failed to parse resourceSpans field"),
        (
            JSON_TYPE,
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"links": "none"}]}]}]}).encode(),
            400,
            "repeated field links must be in []",
        ),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip at all", 400, "not valid gzip data"),
    ],
    ids=["type", "encoding", "protobuf", "json", "hex", "not-an-array", "not-an-object", "links-not-an-array", "gzip"],
)
def test_bad_requests_get_a_clear_status_in_the_request_encoding(
    refusing_base: str, headers: dict[str, str], body: bytes, status: int, says: str
) -> None:
    response = httpx.post(f"{refusing_base}/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    if headers["Content-Type"] == "application/x-protobuf":
        assert response.headers["content-type"] == "application/x-protobuf"
        message = status_pb2.Status.FromString(response.content).message
    else:
        assert response.headers["content-type"] == "application/json"
        message = response.json()["message"]
    assert says in message


def test_invalid_spans_are_rejected_as_partial_success_and_the_rest_stored(base: str) -> None:
    request = json_format.ParseDict(_b64_ids(OTLP_JSON), ExportTraceServiceRequest())
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id, bad.span_id, bad.name = b"\0" * 16, b"\1" * 8, "zero trace id"
    response = httpx.post(f"{base}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "zero trace id" in answer.partial_success.error_message
    assert httpx.get(f"{base}/api/otel/traces").json()["traces"][0]["span_count"] == 2


def test_the_same_spans_twice_are_stored_once_and_a_split_trace_merges(base: str) -> None:
    document = json.loads(json.dumps(OTLP_JSON))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root, child = spans
    spans[:] = [child]  # the child arrives first, alone
    httpx.post(f"{base}/v1/traces", json=document).raise_for_status()
    first = httpx.get(f"{base}/api/otel/traces").json()["traces"][0]
    assert (first["span_count"], first["root_name"]) == (1, None)
    spans[:] = [root, child]  # then the whole trace, twice
    for _ in range(2):
        httpx.post(f"{base}/v1/traces", json=document).raise_for_status()
    merged = httpx.get(f"{base}/api/otel/traces").json()["traces"]
    assert len(merged) == 1
    assert (merged[0]["span_count"], merged[0]["root_name"], merged[0]["duration_ms"]) == (2, "root", 1000.0)


def test_filters_and_pagination(base: str) -> None:
    def trace(index: int, service: str, error: bool, project: str) -> None:
        document = json.loads(json.dumps(OTLP_JSON))
        document["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] = service
        for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            span["traceId"] = f"{index:032x}"
            span["startTimeUnixNano"] = str(int(span["startTimeUnixNano"]) + index * 10**9)
            span["endTimeUnixNano"] = str(int(span["endTimeUnixNano"]) + index * 10**9 + index * 10**6)
            span["status"] = {"code": 2 if error else 1}
        httpx.post(f"{base}/v1/traces", json=document, headers={"X-Plughost-Project": project}).raise_for_status()

    for index in range(1, 8):
        trace(index, "api" if index % 2 else "worker", error=index == 3, project="shop" if index <= 4 else "ml")

    def ids(**params: Any) -> list[int]:
        return [int(t["trace_id"], 16) for t in httpx.get(f"{base}/api/otel/traces", params=params).json()["traces"]]

    assert ids() == [7, 6, 5, 4, 3, 2, 1]
    assert ids(service="worker") == [6, 4, 2]
    assert ids(project="shop") == [4, 3, 2, 1]
    assert ids(status="error") == [3] and ids(status="ok") == [7, 6, 5, 4, 2, 1]
    assert ids(min_duration_ms=1005) == [7, 6, 5]
    assert ids(start_after="2018-12-13T14:51:04Z", start_before="2018-12-13T14:51:06Z") == [5, 4]
    seen, token = [], None
    while True:
        page = httpx.get(
            f"{base}/api/otel/traces", params={"limit": 3, **({"page_token": token} if token else {})}
        ).json()
        seen += [int(t["trace_id"], 16) for t in page["traces"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    bad = httpx.get(f"{base}/api/otel/traces", params={"page_token": "nonsense"})
    assert bad.status_code == 400 and "page_token" in bad.json()["detail"]


def test_delete_and_unknown_ids(base: str) -> None:
    httpx.post(f"{base}/v1/traces", json=OTLP_JSON).raise_for_status()
    trace_id = "5b8efff798038103d269b633813fc60c"
    assert httpx.delete(f"{base}/api/otel/traces/{trace_id}").status_code == 204
    assert httpx.get(f"{base}/api/otel/traces/{trace_id}").status_code == 404
    assert httpx.delete(f"{base}/api/otel/traces/{trace_id}").status_code == 404
    assert httpx.get(f"{base}/api/otel/traces/not-hex").status_code == 422


def test_traces_are_scoped_by_workspace(serve: Any) -> None:
    with serve(plugins=("otel", "workspace")) as url:
        team_a = {"X-Plughost-Workspace": "team-a"}
        httpx.post(f"{url}/v1/traces", json=OTLP_JSON, headers=team_a).raise_for_status()
        assert len(httpx.get(f"{url}/api/otel/traces", headers=team_a).json()["traces"]) == 1
        assert httpx.get(f"{url}/api/otel/traces", headers={"X-Plughost-Workspace": "team-b"}).json()["traces"] == []
        assert httpx.get(f"{url}/api/otel/traces/5b8efff798038103d269b633813fc60c").status_code == 404


def test_store_down_answers_503_with_retry_after_and_loses_nothing(make_app: Any, postgresql_url: str) -> None:
    """PostgreSQL refuses connections for a while: the exporter is told to retry, and nothing stored is lost."""
    with serve_in_thread(make_app(["otel"], {"database_url": postgresql_url})) as url:
        httpx.post(f"{url}/v1/traces", json=OTLP_JSON).raise_for_status()
        with postgresql_down(postgresql_url):
            down = httpx.post(f"{url}/v1/traces", json=OTLP_JSON, headers={}, timeout=30)
            assert down.status_code == 503
            assert down.headers["retry-after"] == "5"
        assert httpx.post(f"{url}/v1/traces", json=OTLP_JSON).status_code == 200
        assert httpx.get(f"{url}/api/otel/traces").json()["traces"][0]["span_count"] == 2


def test_keeps_the_plugin_contract(database_url: str) -> None:
    import plugins.otel

    assert_plugin_contract(plugins.otel, settings={"database_url": database_url})


def _b64_ids(document: dict[str, Any]) -> dict[str, Any]:
    from plugins.otel.decode import _hex_ids_to_base64

    copy = json.loads(json.dumps(document))
    _hex_ids_to_base64(copy)
    return copy
