"""``plughost_trace_reader``: other plugins read stored traces in-process, with the query API's answers."""

from __future__ import annotations

from typing import Any

import pytest

from core.testing import client_for
from plugins.otel.hookspecs import TraceQuery
from plugins.otel.tests.test_jobs import ingest, otlp_trace


def failed(index: int, **options: Any) -> dict[str, Any]:
    """Trace ``index`` whose root span is an error."""
    document = otlp_trace(index, ended_days_ago=0, **options)
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"] = {"code": 2, "message": "boom"}
    return document


def test_the_reader_lists_and_reads_as_the_query_api_answers(make_app: Any) -> None:
    app = make_app(["otel", "workspace"])
    host = app.assembly.host
    reader = host.plugins.manager.hook.plughost_trace_reader(host=host)
    with client_for(app) as client:
        ingest(client, otlp_trace(1, ended_days_ago=0, spans=3), workspace="team-a", project="shop")
        ingest(client, failed(2, service="billing", spans=5), workspace="team-a", project="shop")
        ingest(client, failed(3), workspace="team-b")
        headers = {"X-Plughost-Workspace": "team-a"}
        listed = client.get("/api/otel/traces", headers=headers).json()
        errors = client.get("/api/otel/traces", params={"status": "error"}, headers=headers).json()
        one = client.get(f"/api/otel/traces/{2:032x}", headers=headers).json()

        def call(function: Any, *args: Any, **options: Any) -> Any:
            return client.portal.call(lambda: function(*args, **options))

        assert call(reader.list_traces, workspace="team-a") == listed
        assert call(reader.list_traces, TraceQuery(status="error"), workspace="team-a") == errors
        assert [t["trace_id"] for t in errors["traces"]] == [f"{2:032x}"]
        assert (
            call(reader.list_traces, TraceQuery(service="billing", min_duration_ms=1), workspace="team-b")["traces"]
            == []
        )
        longest = call(reader.list_traces, TraceQuery(sort="-spans"), workspace="team-a")["traces"]
        assert [t["span_count"] for t in longest] == [5, 3]
        with pytest.raises(ValueError, match="is not one of"):
            call(reader.list_traces, TraceQuery(sort="size"), workspace="team-a")
        first = call(reader.list_traces, limit=1, workspace="team-a")
        second = call(reader.list_traces, limit=1, page_token=first["next_page_token"], workspace="team-a")
        assert [*first["traces"], *second["traces"]] == listed["traces"] and second["next_page_token"] is None

        read = call(reader.read, f"{2:032X}", workspace="team-a")  # ids in any case, as other tools print them
        assert {k: v for k, v in read.items() if k != "spans"} == {
            k: v for k, v in one.items() if k not in ("spans", "tree")
        }
        assert read["spans"] == [{k: v for k, v in span.items() if k != "otlp"} for span in one["spans"]]
        assert call(reader.read, f"{2:032x}", workspace="team-b") is None  # another workspace's trace
        lean = call(reader.read, f"{2:032x}", workspace="team-a", lean=True)
        assert [bool(span["attributes"]) for span in lean["spans"]] == [True, False, False, False, False]  # the error
        assert [span["name"] for span in lean["spans"]] == [span["name"] for span in one["spans"]]

        columns = call(reader.columns, f"{2:032X}", workspace="team-a")  # the lean read, by column
        fields = {
            "span_ids": "span_id",
            "parent_span_ids": "parent_span_id",
            "names": "name",
            "service_names": "service_name",
            "starts": "start_time_unix_nano",
            "ends": "end_time_unix_nano",
        }
        assert {column: list(columns[column]) for column in fields} == {
            column: [span[field] for span in lean["spans"]] for column, field in fields.items()
        }
        assert columns["trace_id"] == f"{2:032x}" and columns["details"] == {0: lean["spans"][0]}  # the error
        assert call(reader.columns, f"{2:032x}", workspace="team-b") is None

        async def pieces() -> list[list[str]]:
            return [
                [s["span_id"] for s in piece] async for piece in reader.pieces(f"{2:032x}", size=2, workspace="team-a")
            ]

        assert [len(piece) for piece in client.portal.call(pieces)] == [2, 2, 1]
        assert sum(client.portal.call(pieces), []) == [span["span_id"] for span in one["spans"]]

        summaries = call(reader.summaries, "team-a", [f"{2:032x}", f"{9:032x}"])
        assert summaries == errors["traces"]
        with pytest.raises(ValueError):
            call(reader.list_traces, page_token="not a token", workspace="team-a")
