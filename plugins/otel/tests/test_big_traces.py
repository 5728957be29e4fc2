"""A big trace through the API in pieces: the skeleton, pages of full spans, one span, search inside
the trace; on SQLite and PostgreSQL, through a real server."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from core.testing import BATCH_TRACE_START_NS, batch_span_id, batch_trace, post_otlp, serve_in_thread

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
TRACE_ID = TRACE.hex()
FAILING_SPAN = batch_span_id(2 + 3 * 21 + 1 + 7)  # batch 3, record 7 of batches of 20 records


@pytest.fixture
def base(make_app: Any, database_url: str) -> Iterator[str]:
    with serve_in_thread(make_app(["otel", "workspace"], {"database_url": database_url})) as url:
        yield url


@pytest.fixture
def batch_job(base: str) -> str:
    """211 spans: the root, 10 batches of 20 records; record 7 of batch 3 failed. Sent in pieces of 50 spans."""
    post_otlp(base, batch_trace(TRACE, 10, 20, failing=(3, 7), per_request=50))
    return base


def skeleton(base: str, limit: int, **headers: str) -> list[dict[str, Any]]:
    """Every piece of the trace's skeleton, following ``next_cursor``."""
    pieces, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        answer = httpx.get(f"{base}/api/otel/traces/{TRACE_ID}/skeleton", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        pieces.append(answer.json())
        cursor = pieces[-1]["next_cursor"]
        if cursor is None:
            return pieces


def rows_of(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The skeleton rows as dicts, each parent resolved to a span id."""
    found = []
    for piece in pieces:
        fields = piece["fields"]
        for row in piece["spans"]:
            named = dict(zip(fields, row, strict=False))
            parent = named["parent"]
            named["parent"] = piece["spans"][parent][0] if isinstance(parent, int) else parent
            for field, table in (("name", "names"), ("service", "services"), ("kind", "kinds"), ("model", "models")):
                named[field] = piece[table][named[field]] if field in named else None
            found.append(named)
    return found


def test_the_skeleton_comes_in_pieces_that_make_the_whole_tree(batch_job: str) -> None:
    whole = rows_of(skeleton(batch_job, 20_000))
    pieces = skeleton(batch_job, 37)
    assert len(pieces) == 6 and [len(p["spans"]) for p in pieces] == [37] * 5 + [26]
    assert rows_of(pieces) == whole
    assert len(whole) == 211 and pieces[0]["span_count"] == 211 and pieces[0]["error_count"] == 1
    assert pieces[0]["start_time_unix_nano"] == BATCH_TRACE_START_NS
    # start order, so a parent always comes before its children, and the times are relative microseconds
    seen: set[str] = set()
    for row in whole:
        assert row["parent"] is None or row["parent"] in seen
        seen.add(row["span_id"])
    assert [row["start_us"] for row in whole] == sorted(row["start_us"] for row in whole)
    root, first_batch, first_record = whole[0], whole[1], whole[2]
    assert (root["name"], root["parent"], root["start_us"]) == ("run batch job", None, 0)
    assert (first_batch["name"], first_batch["parent"]) == ("batch 0", root["span_id"])
    assert (first_record["name"], first_record["service"], first_record["duration_us"]) == (
        "process record",
        "batch-worker",
        1000,
    )
    # in a later piece, a parent in an earlier one is named by its span id; in the same piece, by index
    assert pieces[1]["spans"][0][1] == pieces[0]["spans"][22][0]
    assert pieces[1]["spans"][7][1] == 6  # batch 2 is the 7th span of the second piece
    errors = [row for row in whole if row.get("flags")]
    assert [(row["span_id"], row["flags"]) for row in errors] == [(FAILING_SPAN, 3)]  # error, with an exception


def test_the_skeleton_is_small(base: str) -> None:
    """The issue's 5,001-span batch trace: at most 60 bytes a span, gzipped."""
    post_otlp(base, batch_trace(TRACE))
    answer = httpx.get(f"{base}/api/otel/traces/{TRACE_ID}/skeleton", params={"limit": 100_000})
    assert answer.status_code == 200 and len(answer.json()["spans"]) == 5001
    assert answer.json()["next_cursor"] is None
    per_span = len(gzip.compress(answer.content)) / 5001
    assert per_span <= 60, per_span


def test_llm_and_tool_spans_carry_their_kind_and_model(base: str) -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    spans = [
        ("agent", {"openinference.span.kind": "AGENT"}),
        ("chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}),
        ("search", {"gen_ai.operation.name": "execute_tool"}),
        ("plain", {"note": "gen_ai.operation.name is only text here"}),
    ]
    for number, (name, attributes) in enumerate(spans, start=1):
        span = scope.spans.add(trace_id=TRACE, span_id=number.to_bytes(8, "big"), name=name)
        span.start_time_unix_nano, span.end_time_unix_nano = 10 + number, 100
        if number > 1:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items())
    post_otlp(base, iter([request]))
    found = {row["name"]: (row["kind"], row["model"]) for row in rows_of(skeleton(base, 10))}
    assert found == {
        "agent": ("agent", None),
        "chat gpt-4o": ("llm", "gpt-4o"),
        "search": ("tool", None),
        "plain": (None, None),
    }


def test_full_spans_come_in_pieces_too(batch_job: str) -> None:
    whole = httpx.get(f"{batch_job}/api/otel/traces/{TRACE_ID}").json()
    assert "next_cursor" not in whole and len(whole["tree"]) == 1  # without limit: as before
    spans, cursor, pieces = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 64} | ({"cursor": cursor} if cursor else {})
        piece = httpx.get(f"{batch_job}/api/otel/traces/{TRACE_ID}", params=params).json()
        assert piece["span_count"] == 211 and "tree" not in piece and len(piece["spans"]) <= 64
        spans += piece["spans"]
        pieces += 1
        cursor = piece["next_cursor"]
        if cursor is None:
            break
    assert pieces == 4
    assert spans == whole["spans"]


def test_one_span_on_demand(batch_job: str) -> None:
    whole = httpx.get(f"{batch_job}/api/otel/traces/{TRACE_ID}").json()
    expected = next(span for span in whole["spans"] if span["span_id"] == FAILING_SPAN)
    answer = httpx.get(f"{batch_job}/api/otel/traces/{TRACE_ID}/spans/{FAILING_SPAN}")
    assert answer.status_code == 200 and answer.json() == expected
    assert answer.json()["status"]["message"] == "could not parse record rec-3-7"
    missing = httpx.get(f"{batch_job}/api/otel/traces/{TRACE_ID}/spans/{'ab' * 8}")
    assert missing.status_code == 404 and "no span abababababababab" in missing.json()["detail"]
    elsewhere = httpx.get(
        f"{batch_job}/api/otel/traces/{TRACE_ID}/spans/{FAILING_SPAN}", headers={"X-Plughost-Workspace": "other"}
    )
    assert elsewhere.status_code == 404


def test_search_inside_a_trace(batch_job: str) -> None:
    def search(text: str, **params: Any) -> dict[str, Any]:
        answer = httpx.get(f"{batch_job}/api/otel/traces/{TRACE_ID}/search", params={"q": text, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()

    found = search("REC-3-7")  # an attribute value, in any case
    assert found["matches"] == [
        {"span_id": FAILING_SPAN, "name": "process record", "where": "attribute", "key": "record.id"}
    ]
    assert not found["truncated"]
    assert [m["where"] for m in search("batch 9")["matches"]] == ["name"]
    assert search("nothing like this")["matches"] == []
    by_service = search("batch-worker", limit=5)
    assert len(by_service["matches"]) == 5 and by_service["truncated"]
    assert {m["where"] for m in by_service["matches"]} == {"service"}


def test_bad_pieces_are_refused_in_words(batch_job: str) -> None:
    url = f"{batch_job}/api/otel/traces/{TRACE_ID}"
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (url, {"limit": 0}, 400, "limit must be between 1 and 10000"),
        (url, {"limit": 5, "cursor": "not-a-cursor"}, 400, "is not one this server returned"),
        (url, {"cursor": "MTox"}, 400, "cursor: give limit too"),
        (url + "/skeleton", {"limit": 100_001}, 400, "limit must be between 1 and 100000"),
        (url + "/skeleton", {"cursor": "MTp4eXo="}, 400, "is not one this server returned"),
        (url + "/search", {"q": "x", "limit": 0}, 400, "limit must be between 1 and 1000"),
        (f"{batch_job}/api/otel/traces/{'0' * 32}/skeleton", {}, 404, f"no trace {'0' * 32}"),
        (f"{batch_job}/api/otel/traces/{'0' * 32}/search", {"q": "x"}, 404, f"no trace {'0' * 32}"),
    ]
    for address, params, status, words in cases:
        answer = httpx.get(address, params=params)
        assert answer.status_code == status, (address, params, answer.text)
        assert words in json.dumps(answer.json()["detail"]), answer.text
    other = httpx.get(url + "/skeleton", headers={"X-Plughost-Workspace": "other"})
    assert other.status_code == 404 and "workspace 'other'" in other.json()["detail"]


def test_terms_repeated_across_spans_are_held_once() -> None:
    """A request whose 500 spans repeat 400 attributes: its decoded rows hold each distinct term once (the
    per-span copies made a 1.8 M-attribute trace's terms 350 MiB, most of the ingest's growth)."""
    import tracemalloc

    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from plugins.otel.decode import to_rows

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    template = Span(trace_id=TRACE, name="work", start_time_unix_nano=1, end_time_unix_nano=2)
    template.attributes.extend(
        KeyValue(key=f"attribute.{n}", value=AnyValue(string_value=f"value-{n}")) for n in range(400)
    )
    for number in range(1, 501):
        spans.add().CopyFrom(template)
        spans[-1].span_id = number.to_bytes(8, "big")
    request = ExportTraceServiceRequest.FromString(request.SerializeToString())
    tracemalloc.start()
    try:
        rows = to_rows(request, workspace="default", project="default").rows
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows) == 500 and len(rows[0]["terms"]) == 402  # 400 attributes, the name, the service
    assert held < 12 * 2**20, held  # the spans' own bytes are ~8 MiB; a copy of each term would add 35
