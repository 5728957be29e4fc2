"""Sessions on SQLite and PostgreSQL: a chat app's conversation, one trace a turn, made by a real
instrumentation (OpenInference's ``using_session``; a GenAI agent invocation naming
``gen_ai.conversation.id`` around the openai-v2 instrumentation) around an openai client calling
llmock; listed, filtered, read as a thread, paged, and kept apart by workspace."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from core.testing import serve_in_thread
from plugins.otel.tests.instrumented import CONVERSATION, MODEL, QUESTION

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def base(make_app: Any, database_url: str) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "workspace"], {"database_url": database_url})) as url:
        yield url


def converse(base: str, llmock: Any, instrumentation: str, session: str) -> None:
    """The instrumented app holds :data:`CONVERSATION` in ``session``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "plugins.otel.tests.instrumented",
            instrumentation,
            base,
            llmock.base_url("openai"),
            session,
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )


def wait_for_session(base: str, session: str, traces: int, **headers: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{base}/api/otel/sessions/{session}", headers=headers)
        if response.status_code == 200 and len(response.json()["turns"]) >= traces:
            found: dict[str, Any] = response.json()
            if all(turn["output"] for turn in found["turns"]):  # log records may come after the spans
                return found
        assert time.monotonic() < deadline, f"no session {session} of {traces} traces: {response.text}"
        time.sleep(0.2)


@pytest.mark.parametrize("instrumentation", ["openinference", "openai-v2"])
def test_a_conversation_is_a_session_read_as_a_thread(base: str, llmock: Any, instrumentation: str) -> None:
    session = f"chat-{instrumentation}"
    converse(base, llmock, instrumentation, session)
    thread = wait_for_session(base, session, len(CONVERSATION))

    assert thread["session_id"] == session and thread["trace_count"] == len(CONVERSATION)
    assert thread["llm_calls"] == len(CONVERSATION) and thread["input_tokens"] > 0 and thread["output_tokens"] > 0
    assert thread["cost_usd"] is not None and all(turn["cost_usd"] for turn in thread["turns"])  # a known model
    assert thread["cost_usd"] == pytest.approx(sum(turn["cost_usd"] for turn in thread["turns"]))
    assert [turn["input"] for turn in thread["turns"]] == list(CONVERSATION)  # each turn's new question
    assert QUESTION in thread["turns"][0]["output"]  # llmock echoes a conversation's first question
    assert all(turn["output"] and turn["session_id"] == session for turn in thread["turns"])
    starts = [turn["start_time_unix_nano"] for turn in thread["turns"]]
    assert starts == sorted(starts)
    assert thread["first_time_unix_nano"] == starts[0]
    assert thread["last_time_unix_nano"] == max(turn["end_time_unix_nano"] for turn in thread["turns"])

    [listed] = httpx.get(f"{base}/api/otel/sessions").json()["sessions"]
    assert {key: listed[key] for key in listed} == {key: thread[key] for key in listed}
    filtered = httpx.get(f"{base}/api/otel/traces", params={"session": session}).json()["traces"]
    assert {t["trace_id"] for t in filtered} == {turn["trace_id"] for turn in thread["turns"]}
    assert httpx.get(f"{base}/api/otel/traces", params={"session": "other", "model": MODEL}).json()["traces"] == []


def export_sessions(base: str, sessions: int, workspace: str = "default") -> None:
    """``sessions`` sessions of two traces each (the second of session 1 fails), the later ones later."""
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=10, headers={"X-Plughost-Workspace": workspace})
    provider = TracerProvider(resource=Resource.create({"service.name": "chat"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sessions-test")
    start = 1_767_225_600_000_000_000
    for number in range(sessions):
        for turn in range(2):
            at = start + (number * 10 + turn) * 1_000_000_000
            span = tracer.start_span("handle", start_time=at, attributes={"session.id": f"s-{number}"})
            if number == 1 and turn == 1:
                span.set_status(Status(StatusCode.ERROR, "failed"))
            span.end(end_time=at + 5_000_000)
    provider.shutdown()


def test_sessions_page_in_either_order_and_stay_in_their_workspace(base: str) -> None:
    export_sessions(base, 5)
    export_sessions(base, 1, workspace="team-b")

    def listed(**params: Any) -> list[str]:
        found, token = [], None
        while True:
            page = httpx.get(
                f"{base}/api/otel/sessions", params={"limit": 2, **params, **({"page_token": token} if token else {})}
            ).json()
            found += [session["session_id"] for session in page["sessions"]]
            if (token := page["next_page_token"]) is None:
                return found

    assert listed() == ["s-4", "s-3", "s-2", "s-1", "s-0"]
    assert listed(sort="last_time") == ["s-0", "s-1", "s-2", "s-3", "s-4"]
    one = httpx.get(f"{base}/api/otel/sessions/s-1").json()
    assert (one["trace_count"], one["error_count"], one["error_traces"], one["llm_calls"]) == (2, 1, 1, 0)
    assert [turn["input"] for turn in one["turns"]] == [None, None]  # no LLM call: nothing said
    paged = httpx.get(f"{base}/api/otel/sessions/s-1", params={"limit": 1}).json()
    rest = httpx.get(f"{base}/api/otel/sessions/s-1", params={"limit": 1, "page_token": paged["next_page_token"]})
    assert [t["trace_id"] for t in paged["turns"] + rest.json()["turns"]] == [t["trace_id"] for t in one["turns"]]
    assert rest.json()["next_page_token"] is None

    team_b = {"X-Plughost-Workspace": "team-b"}
    assert [s["session_id"] for s in httpx.get(f"{base}/api/otel/sessions", headers=team_b).json()["sessions"]] == [
        "s-0"
    ]
    assert httpx.get(f"{base}/api/otel/sessions/s-0", headers=team_b).json()["trace_count"] == 2
    assert httpx.get(f"{base}/api/otel/sessions/s-4", headers=team_b).status_code == 404
    assert httpx.get(f"{base}/api/otel/sessions", headers={"X-Plughost-Workspace": "team-c"}).json() == {
        "sessions": [],
        "next_page_token": None,
    }


def test_a_session_id_may_hold_any_character(base: str) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": "chat"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("sessions-test").start_span("handle", attributes={"session.id": "user/7 chat?#%"}).end()
    provider.shutdown()
    [listed] = httpx.get(f"{base}/api/otel/sessions").json()["sessions"]
    assert listed["session_id"] == "user/7 chat?#%"
    found = httpx.get(f"{base}/api/otel/sessions/{quote(listed['session_id'], safe='')}")
    assert found.status_code == 200 and found.json()["trace_count"] == 1


def test_bad_session_requests_say_what_is_wrong(base: str) -> None:
    export_sessions(base, 1)
    bad_sort = httpx.get(f"{base}/api/otel/sessions", params={"sort": "-trace_count"})
    assert bad_sort.status_code == 400 and "-last_time" in bad_sort.json()["detail"]
    bad_token = httpx.get(f"{base}/api/otel/sessions", params={"page_token": "nonsense"})
    assert bad_token.status_code == 400 and "page_token" in bad_token.json()["detail"]
    missing = httpx.get(f"{base}/api/otel/sessions/nobody")
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    assert httpx.get(f"{base}/api/otel/sessions/s-0").status_code == 200
