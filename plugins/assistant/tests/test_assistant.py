"""The assistant with real traces (OTel SDK -> /v1/traces), the localhost rule, and an LLM answer via the gateway."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import APIRouter
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Status, StatusCode

import plugins.assistant
import plugins.assistant.store
from core import StartupError
from core.cli import build_cli
from core.testing import assert_plugin_contract, client_for, serve_in_thread
from plugins.assistant.policy import access, undeclared
from plugins.gateway.tests.fake_provider import create_provider

from .otlp import MS, exporting, trace_id_of

KEK = base64.b64encode(bytes(32)).decode()


def export_checkout_trace(base: str) -> str:
    """GET /checkout, 100 ms: auth 0-10, six 'SELECT item' 10-40 (N+1), nothing 40-60,
    charge card 60-100 (failed: card declined) around POST /payments 62-98."""
    with exporting(base, "shop") as tracer:
        return _checkout(tracer)


def _checkout(tracer: Any) -> str:
    t0 = time.time_ns()
    root = tracer.start_span("GET /checkout", start_time=t0)
    inside_root = otel_trace.set_span_in_context(root)

    def child(name: str, begin: int, end: int, context: Any = inside_root) -> Any:
        span = tracer.start_span(name, context=context, start_time=t0 + begin * MS)
        return span, end

    auth, end = child("auth", 0, 10)
    auth.end(end_time=t0 + end * MS)
    for index in range(6):
        select, end = child("SELECT item", 10 + 5 * index, 15 + 5 * index)
        select.end(end_time=t0 + end * MS)
    charge, _ = child("charge card", 60, 100)
    payments, _ = child("POST /payments", 62, 98, otel_trace.set_span_in_context(charge))
    payments.end(end_time=t0 + 98 * MS)
    charge.record_exception(ValueError("card declined"))
    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    charge.end(end_time=t0 + 100 * MS)
    root.end(end_time=t0 + 100 * MS)
    return trace_id_of(root)


@pytest.fixture
def base(make_app: Any) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "assistant"])) as url:
        yield url


def test_offline_analysis_finds_the_critical_path_errors_repeats_and_gaps(base: str) -> None:
    trace_id = export_checkout_trace(base)
    analysis = httpx.post(f"{base}/api/assistant/analyze", json={"trace_id": trace_id}).json()
    assert analysis["duration_ms"] == pytest.approx(100)
    assert [(step["name"], step["start_offset_ms"], step["duration_ms"]) for step in analysis["critical_path"]] == [
        ("auth", 0, 10),
        *[("SELECT item", 10 + 5 * i, 5) for i in range(6)],
        ("GET /checkout", 40, 20),
        ("charge card", 60, 2),
        ("POST /payments", 62, 36),
        ("charge card", 98, 2),
    ]
    assert analysis["critical_path_ms"] == pytest.approx(100)
    slowest = {s["name"]: s for s in analysis["slowest_spans"]}
    assert list(slowest)[:4] == ["POST /payments", "SELECT item", "GET /checkout", "auth"]  # by name, total self time
    assert (slowest["SELECT item"]["count"], slowest["SELECT item"]["self_ms"]) == (6, pytest.approx(30))
    assert slowest["SELECT item"]["max_ms"] == pytest.approx(5)
    assert slowest["POST /payments"]["self_ms"] == pytest.approx(36) and slowest["POST /payments"][
        "share"
    ] == pytest.approx(0.36)
    assert slowest["GET /checkout"]["self_ms"] == pytest.approx(20)
    assert analysis["errors"] == [
        {
            "span_id": analysis["critical_path"][8]["span_id"],
            "name": "charge card",
            "service_name": "shop",
            "message": "card declined",
            "exceptions": ["ValueError: card declined"],
        }
    ]
    assert [(r["name"], r["count"], r["parent_name"]) for r in analysis["repeated_calls"]] == [
        ("SELECT item", 6, "GET /checkout")
    ]
    assert analysis["repeated_calls"][0]["total_ms"] == pytest.approx(30)
    assert [(g["start_offset_ms"], g["duration_ms"], g["inside"]) for g in analysis["gaps"]] == [
        (pytest.approx(40), pytest.approx(20), "GET /checkout")
    ]
    text = httpx.post(f"{base}/api/assistant/analyze", params={"format": "text"}, json={"trace_id": trace_id}).text
    assert analysis["sequential"]
    assert "Sequential: nothing ran in parallel, so the critical path is the whole trace (100.0 ms)." in text
    assert "Repeated: SELECT item called 6 times under GET /checkout" in text
    assert "Gap: nothing ran for 20.0 ms at +40.0 ms inside GET /checkout" in text
    missing = httpx.post(f"{base}/api/assistant/analyze", json={"trace_id": "0" * 31 + "1"})
    assert missing.status_code == 404


def test_a_trace_over_the_span_cap_is_refused_before_it_is_read(make_app: Any) -> None:
    with serve_in_thread(make_app(["otel", "assistant"], {"assistant": {"max_spans": 10}})) as url:
        trace_id = export_checkout_trace(url)  # 10 spans: at the cap, analysed
        assert httpx.post(f"{url}/api/assistant/analyze", json={"trace_id": trace_id}).status_code == 200
    with serve_in_thread(make_app(["otel", "assistant"], {"assistant": {"max_spans": 9}})) as url:
        trace_id = export_checkout_trace(url)
        refused = httpx.post(f"{url}/api/assistant/analyze", json={"trace_id": trace_id})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        f"trace {trace_id} has 10 spans, more than the 9 an analysis reads (PLUGHOST_ASSISTANT_MAX_SPANS); "
        "open it in the trace view, which reads it in pieces"
    )


@pytest.mark.parametrize(
    "header", ["Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via"]
)
def test_forwarding_headers_make_a_request_remote(base: str, header: str) -> None:
    response = httpx.post(f"{base}/api/assistant/analyze", json={"trace_id": "0" * 32}, headers={header: "1.2.3.4"})
    assert response.status_code == 403
    assert (
        "PLUGHOST_ASSISTANT_ALLOW_REMOTE=1 together with PLUGHOST_SECURITY_TOKEN or accounts"
        in (response.json()["detail"])
    )


def test_a_non_loopback_peer_is_refused(make_app: Any) -> None:
    with client_for(make_app(["otel", "assistant"]), base_url="http://127.0.0.1", client=("10.1.2.3", 40000)) as remote:
        response = remote.get("/api/assistant/conversations/abc")
    assert response.status_code == 403


def test_remote_access_needs_the_setting_and_the_token(make_app: Any) -> None:
    with pytest.raises(StartupError, match="PLUGHOST_ASSISTANT_ALLOW_REMOTE needs authenticated requests"):
        make_app(["otel", "assistant"], {"assistant": {"allow_remote": True}})
    with pytest.raises(StartupError, match="PLUGHOST_ASSISTANT_ALLOW_REMOTE needs authenticated requests"):
        make_app(["otel", "assistant", "security"], {"assistant": {"allow_remote": True}})  # security, no token
    token = "a-token-long-enough-1234"
    app = make_app(
        ["otel", "assistant", "security"], {"assistant": {"allow_remote": True}, "security": {"token": token}}
    )

    with client_for(app, base_url="http://10.0.0.1", client=("10.1.2.3", 40000)) as remote:
        assert (
            remote.get("/api/assistant/conversations/unknown").status_code == 401
        )  # the security plugin wants the token
        authorised = remote.get("/api/assistant/conversations/unknown", headers={"Authorization": f"Bearer {token}"})
    assert authorised.status_code == 404  # let through; there is no such conversation


def test_remote_access_with_accounts_takes_an_api_key(make_app: Any, database_url: str, tmp_path: Path) -> None:
    env = {"PLUGHOST_DATABASE_URL": database_url, "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_SECURITY_AUTH": "users"}
    made = CliRunner().invoke(build_cli(), ["keys", "add", "analyst", "--role", "editor"], env=env)
    assert made.exit_code == 0, made.output
    settings = {
        "database_url": database_url,
        "data_dir": tmp_path,
        "assistant": {"allow_remote": True},
        "security": {"auth": "users"},
    }
    app = make_app(["otel", "assistant", "security"], settings)
    with client_for(app, base_url="http://127.0.0.1", client=("10.1.2.3", 40000)) as remote:
        assert remote.get("/api/assistant/conversations/unknown").status_code == 401
        key = {"Authorization": f"Bearer {made.output.strip()}"}
        assert remote.get("/api/assistant/conversations/unknown", headers=key).status_code == 404  # let through


def test_a_route_without_a_policy_stops_startup(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    router = APIRouter()
    router.add_api_route(
        "/api/assistant/declared", lambda: None, methods=["GET"], **access("local-only", remote_allowed=False)
    )
    router.add_api_route("/api/assistant/forgotten", lambda: None, methods=["POST"])
    assert undeclared(router) == ["['POST'] /api/assistant/forgotten"]
    monkeypatch.setattr(plugins.assistant, "create_router", lambda *args: router)
    with pytest.raises(
        StartupError,
        match=r"plugin 'assistant'.*routes without a remote-access policy: \['POST'\] /api/assistant/forgotten",
    ):
        make_app(["assistant"])


class Clock:
    """The conversation store's ``time``, set by the test: expiry without waiting, whatever the machine's speed."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The conversation store's clock (the servers run in this process); move it with ``clock.now += seconds``."""
    fake = Clock()
    monkeypatch.setattr(plugins.assistant.store, "time", fake)
    return fake


@pytest.fixture
def with_llm(make_app: Any) -> Iterator[str]:
    provider_app, _ = create_provider()
    with serve_in_thread(provider_app) as provider_url:
        settings = {
            "gateway": {"allow_private": True, "kek": KEK},
            "assistant": {"endpoint": "explainer", "conversation_hours": 1.0},
        }
        with serve_in_thread(make_app(["otel", "assistant", "gateway", "workspace"], settings)) as url:
            api = httpx.Client(base_url=f"{url}/api/gateway")
            api.post(
                "/secrets", json={"name": "k", "api_key": "sk-test-000000000000", "base_url": f"{provider_url}/v1"}
            ).raise_for_status()
            api.post(
                "/models", json={"name": "m", "provider": "openai", "model": "echo-llm", "secret": "k"}
            ).raise_for_status()
            api.post("/endpoints", json={"name": "explainer", "models": [{"model": "m"}]}).raise_for_status()
            api.post(
                "/models", json={"name": "truncating", "provider": "openai", "model": "cut", "secret": "k"}
            ).raise_for_status()
            api.post("/endpoints", json={"name": "cut-off", "models": [{"model": "truncating"}]}).raise_for_status()
            yield url


def events(response: httpx.Response) -> list[tuple[str, Any]]:
    found = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_explanation_streams_analysis_llm_text_and_a_done_event_with_ids_only(with_llm: str, clock: Clock) -> None:
    trace_id = export_checkout_trace(with_llm)
    with httpx.stream(
        "POST", f"{with_llm}/api/assistant/explain", json={"trace_id": trace_id, "question": "why slow?"}
    ) as response:
        response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response)
    assert stream[0][0] == "analysis" and stream[0][1]["trace_id"] == trace_id
    deltas = [data["text"] for kind, data in stream if kind == "delta"]
    assert len(deltas) > 3 and "".join(deltas).startswith("echo-llm: Trace") and "why slow?" in "".join(deltas)
    kind, done = stream[-1]
    assert kind == "done" and set(done) == {"conversation_id", "trace_id"} and done["trace_id"] == trace_id

    follow_up = httpx.post(
        f"{with_llm}/api/assistant/explain",
        json={"conversation_id": done["conversation_id"], "question": "and the errors?"},
    )
    follow_events = events(follow_up)
    assert [kind for kind, _ in follow_events][0] == "delta" and follow_events[-1][0] == "done"
    assert "".join(d["text"] for k, d in follow_events if k == "delta") == "echo-llm: and the errors?"
    conversation = httpx.get(f"{with_llm}/api/assistant/conversations/{done['conversation_id']}").json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant", "user", "assistant"]
    other = httpx.get(
        f"{with_llm}/api/assistant/conversations/{done['conversation_id']}", headers={"X-Plughost-Workspace": "team-b"}
    )
    assert other.status_code == 404  # conversations are per workspace
    clock.now += 3600 - 1  # conversation_hours is 1 here
    assert httpx.get(f"{with_llm}/api/assistant/conversations/{done['conversation_id']}").status_code == 200
    clock.now += 2
    assert httpx.get(f"{with_llm}/api/assistant/conversations/{done['conversation_id']}").status_code == 404


def test_explain_errors_before_the_stream(with_llm: str) -> None:
    trace_id = export_checkout_trace(with_llm)
    assert (
        httpx.post(f"{with_llm}/api/assistant/explain", json={"trace_id": trace_id, "endpoint": "nope"}).status_code
        == 404
    )
    assert httpx.post(f"{with_llm}/api/assistant/explain", json={}).status_code == 400
    assert (
        httpx.post(f"{with_llm}/api/assistant/explain", json={"conversation_id": "gone", "question": "x"}).status_code
        == 404
    )


def conversations(base: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{base}/api/assistant/conversations")
    assert listed.status_code == 200
    return listed.json()["conversations"]


def test_a_failed_explanation_stores_nothing(with_llm: str) -> None:
    trace_id = export_checkout_trace(with_llm)
    unknown = httpx.post(f"{with_llm}/api/assistant/explain", json={"trace_id": trace_id, "endpoint": "nope"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
    assert conversations(with_llm) == []

    cut = httpx.post(f"{with_llm}/api/assistant/explain", json={"trace_id": trace_id, "endpoint": "cut-off"})
    stream = events(cut)
    assert [kind for kind, _ in stream][0] == "analysis" and stream[-1][0] == "error"
    assert "conversation_id" not in stream[-1][1]
    assert conversations(with_llm) == []  # the client was never told an id, so none was kept

    done = events(httpx.post(f"{with_llm}/api/assistant/explain", json={"trace_id": trace_id}))[-1]
    assert done[0] == "done"
    assert [(c["id"], c["trace_id"], c["endpoint"]) for c in conversations(with_llm)] == [
        (done[1]["conversation_id"], trace_id, "explainer")
    ]


def test_a_failed_follow_up_leaves_the_conversation_as_it_was(with_llm: str) -> None:
    trace_id = export_checkout_trace(with_llm)
    conversation_id = events(httpx.post(f"{with_llm}/api/assistant/explain", json={"trace_id": trace_id}))[-1][1][
        "conversation_id"
    ]
    before = httpx.get(f"{with_llm}/api/assistant/conversations/{conversation_id}").json()["messages"]
    # the endpoint the conversation uses is gone
    assert httpx.delete(f"{with_llm}/api/gateway/endpoints/explainer").status_code == 204
    gone = httpx.post(
        f"{with_llm}/api/assistant/explain", json={"conversation_id": conversation_id, "question": "and now?"}
    )
    assert gone.status_code == 404
    assert httpx.get(f"{with_llm}/api/assistant/conversations/{conversation_id}").json()["messages"] == before


def test_keeps_the_plugin_contract() -> None:
    assert_plugin_contract(plugins.assistant)
