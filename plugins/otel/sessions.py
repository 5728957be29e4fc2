"""Sessions: the traces of one conversation, listed and read as a thread.

A trace belongs to the session its spans name (``session_id`` of its summary, see
:func:`.span_writes.summarise`); a session is every trace of the workspace with that id. The list
aggregates the summaries (read through the index on ``(workspace, session_id, start_ns)``); a
session's thread is its traces in start order, each a turn with its input (the last user message
of its first model call) and its final answer (the last message of its last model call), read
from the model-call spans alone (and their log records, where an instrumentation sends the
messages as events) off the event loop.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, select, tuple_
from sqlalchemy.sql import ColumnElement

from core import run_bulk
from core.context import current_workspace

from .decode import INT64_MAX
from .logs import LogStore, by_span
from .present import NS_PER_MS, span_view, trace_summary
from .store import SpanStore
from .tables import calls, spans, traces

SESSION_SORTS = ("-last_time", "last_time")
"""The orders of ``GET /api/otel/sessions``: by the end of the session's last trace, newest first by default."""
MAX_TURN_CHARS = 4000
"""A turn's input or answer is cut here (its trace holds it whole)."""

LAST_NS = func.max(traces.c.end_ns)
AGGREGATES: list[ColumnElement[Any]] = [
    traces.c.session_id,
    func.count().label("trace_count"),
    func.min(traces.c.start_ns).label("first_ns"),
    LAST_NS.label("last_ns"),
    cast(func.sum(traces.c.llm_calls), BigInteger).label("llm_calls"),
    cast(func.sum(traces.c.input_tokens), BigInteger).label("input_tokens"),
    cast(func.sum(traces.c.output_tokens), BigInteger).label("output_tokens"),
    cast(func.sum(traces.c.error_count), BigInteger).label("error_count"),
    cast(func.sum(case((traces.c.error_count > 0, 1), else_=0)), BigInteger).label("error_traces"),
    func.sum(traces.c.cost_usd).label("cost_usd"),  # the priced traces' total; null when none is priced
]


def session_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": row["session_id"],
        "trace_count": row["trace_count"],
        "first_time_unix_nano": row["first_ns"],
        "last_time_unix_nano": row["last_ns"],
        "duration_ms": (row["last_ns"] - row["first_ns"]) / NS_PER_MS,
        "llm_calls": row["llm_calls"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "error_count": row["error_count"],
        "error_traces": row["error_traces"],
        "cost_usd": row["cost_usd"],
    }


class SessionStore:
    """Sessions read from the span store's summaries, spans and model calls, and the log store's records."""

    def __init__(self, store: SpanStore, logs: LogStore) -> None:
        self._store = store
        self._logs = logs

    async def list_sessions(
        self, limit: int, page_token: str | None, sort: str = SESSION_SORTS[0]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the workspace's sessions and the next page's token (``None`` at the end)."""
        descending = sort.startswith("-")
        query = (
            select(*AGGREGATES)
            .where(traces.c.workspace == current_workspace(), traces.c.session_id.is_not(None))
            .group_by(traces.c.session_id)
        )
        if page_token:
            last_ns, session_id = _decode(page_token, sort)
            position, bound = tuple_(LAST_NS, traces.c.session_id), tuple_(last_ns, session_id)
            query = query.having(position < bound if descending else position > bound)
        if descending:
            query = query.order_by(LAST_NS.desc(), traces.c.session_id.desc())
        else:
            query = query.order_by(LAST_NS.asc(), traces.c.session_id.asc())
        async with self._store.engine.connect() as connection:
            found = [dict(row._mapping) for row in await connection.execute(query.limit(limit + 1))]
        page = found[:limit]
        token = _encode(sort, page[-1]["last_ns"], page[-1]["session_id"]) if len(found) > limit else None
        return page, token

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        query = (
            select(*AGGREGATES)
            .where(traces.c.workspace == current_workspace(), traces.c.session_id == session_id)
            .group_by(traces.c.session_id)
        )
        async with self._store.engine.connect() as connection:
            found = (await connection.execute(query)).first()
        return None if found is None else dict(found._mapping)

    async def turns(
        self, session_id: str, limit: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the session's traces in start order, each a trace summary with the turn's ``input`` and
        ``output`` (text, or ``None`` when its model calls carry no messages), and the next page's token."""
        workspace = current_workspace()
        query = select(traces).where(traces.c.workspace == workspace, traces.c.session_id == session_id)
        if page_token:
            start_ns, trace_id = _decode(page_token, "turns")
            query = query.where(tuple_(traces.c.start_ns, traces.c.trace_id) > tuple_(int(start_ns), trace_id))
        query = query.order_by(traces.c.start_ns, traces.c.trace_id).limit(limit + 1)
        call_spans = (
            select(spans)
            .join(
                calls,
                and_(
                    calls.c.workspace == spans.c.workspace,
                    calls.c.trace_id == spans.c.trace_id,
                    calls.c.span_id == spans.c.span_id,
                ),
            )
            .order_by(spans.c.start_ns, spans.c.span_id)
        )
        async with self._store.engine.connect() as connection:
            found = [dict(row._mapping) for row in await connection.execute(query)]
            page = found[:limit]
            in_page = calls.c.trace_id.in_([trace["trace_id"] for trace in page])
            rows = [
                dict(row._mapping)
                for row in await connection.execute(call_spans.where(calls.c.workspace == workspace, in_page))
            ]
        records = {
            trace_id: by_span(await self._logs.for_trace(workspace, trace_id))
            for trace_id in {row["trace_id"] for row in rows}
        }
        said = await run_bulk(_turn_texts, rows, records)
        turns = [{**trace_summary(trace), **said.get(trace["trace_id"], NOTHING_SAID)} for trace in page]
        more = len(found) > limit
        return turns, _encode("turns", page[-1]["start_ns"], page[-1]["trace_id"]) if more else None


NOTHING_SAID: dict[str, str | None] = {"input": None, "output": None}


def _turn_texts(rows: list[dict[str, Any]], records: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per trace, the turn's input and answer from its model-call span ``rows`` (in start order)."""
    said: dict[str, dict[str, str | None]] = {}
    for row in rows:
        genai = span_view(row, logs=records[row["trace_id"]].get(row["span_id"], ()), otlp=False)["genai"] or {}
        turn = said.setdefault(row["trace_id"], dict(NOTHING_SAID))
        if turn["input"] is None and genai.get("input_messages"):
            turn["input"] = _text(_last(genai["input_messages"], "user"))
        if genai.get("output_messages"):
            turn["output"] = _text(genai["output_messages"][-1]) or turn["output"]
    return said


def _last(messages: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return next((message for message in reversed(messages) if message["role"] == role), messages[-1])


def _text(message: dict[str, Any]) -> str | None:
    """A message's text parts (or, without any, its tool calls by name), cut at :data:`MAX_TURN_CHARS`."""
    text = "\n".join(part["content"] for part in message["parts"] if part["type"] == "text" and part["content"])
    if not text:
        text = ", ".join(f"{part['name']}(…)" for part in message["parts"] if part["type"] == "tool_call")
    if not text:
        return None
    return text if len(text) <= MAX_TURN_CHARS else text[:MAX_TURN_CHARS] + "…"


def _encode(kind: str, number: int, text: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{number}:{text}".encode()).decode()


def _decode(token: str, kind: str) -> tuple[int, str]:
    """``(number, text)`` of a token :func:`_encode` made for ``kind``; ``ValueError`` for any other."""
    try:
        made_for, number, text = base64.urlsafe_b64decode(token.encode()).decode().split(":", 2)
        position = int(number), text
    except (ValueError, UnicodeError):
        position = None
    if position is None or not -INT64_MAX <= position[0] <= INT64_MAX:
        raise ValueError(f"page_token {token[:64]!r} is not one this server returned")
    if made_for != kind:
        raise ValueError(f"page_token {token[:64]!r} is not a page of this list (start without it)")
    return position
