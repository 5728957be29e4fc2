"""OTLP/HTTP ingest (``POST /v1/traces``) and the trace query API (``/api/otel/traces``)."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import nullcontext
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from pydantic import AfterValidator, BeforeValidator

import core.unavailable
from core import body_limit, run_bulk
from core.context import current_workspace

from .budget import BudgetExhausted, DecompressionBudget
from .decode import (
    INT64_MAX,
    JSON,
    PROTOBUF,
    Decoded,
    PayloadError,
    decode_request,
    decompress,
    media_type,
    most_inflated,
    stated_size,
)
from .facts import MAX_TERM_CHARS
from .huge_span import is_huge
from .ingest import LARGE_REQUEST_BYTES, NotStored, Signal, bulk_work, signals
from .logs import LogStore, by_span
from .metrics import KEPT, MetricStore
from .present import span_tree, span_view, spans_json, trace_summary
from .reader import nanoseconds
from .sessions import MAX_TURN_CHARS, SESSION_SORTS, SessionStore, session_view
from .settings import Settings
from .skeleton import COLUMNS as SKELETON_COLUMNS
from .skeleton import FIELDS as SKELETON_FIELDS
from .skeleton import Piece
from .sorting import DEFAULT_SORT, SORT_KEYS, SORTS, Order
from .store import SpanPosition, SpanStore, TraceFilter, decode_span_cursor, encode_span_cursor
from .trace_search import span_matches

T = TypeVar("T")
Term = TypeVar("Term", bound=str | None)
logger = logging.getLogger("plughost.otel")

RETRY_AFTER_SECONDS = str(core.unavailable.RETRY_AFTER_SECONDS)
TraceId = Annotated[
    str,
    Path(pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits, in either case (other tools print upper case)"),
    AfterValidator(str.lower),
]
SpanId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="16 lowercase hex digits")]
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
MAX_LIMIT = 1000
ATTRIBUTE_PREFIX = "attr."
MAX_ATTRIBUTE_FILTERS = 10
MAX_SPANS_PER_PIECE = 10_000
"""Full spans per piece of ``GET /api/otel/traces/{id}?limit=``."""
SKELETON_PIECE = 20_000
MAX_SKELETON_PIECE = 100_000
SKELETON_PAGE = 2000
"""Skeleton rows read from the store, and encoded off the event loop, at a time."""
SPANS_PER_STORE_PAGE = 200
"""Full span rows read from the store at a time."""
SEARCH_PAGE = 500
MAX_SEARCH_MATCHES = 1000
MAX_TURNS = 200
"""Turns per page of ``GET /api/otel/sessions/{session_id}``."""
MAX_DURATION_MS = INT64_MAX / 1_000_000
Responses = dict[int | str, dict[str, Any]]
BAD_REQUEST: Responses = {
    400: {"description": "A parameter is out of range or malformed; the JSON `detail` says which."}
}
NOT_FOUND: Responses = {404: {"description": "No such trace in this workspace."}}
OTLP_ERRORS: Responses = {
    400: {"description": "Not a valid OTLP ExportTraceServiceRequest (a google.rpc.Status in the request's encoding)."},
    413: {
        "description": "Body over `PLUGHOST_OTEL_MAX_BODY_BYTES`, "
        "or inflating past `PLUGHOST_OTEL_MAX_DECOMPRESSED_BYTES`."
    },
    415: {"description": "Unsupported Content-Type or Content-Encoding."},
    503: {
        "description": "The store is down or busy, or too much is being decompressed at once; "
        "retry after `Retry-After`."
    },
}
GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    503: code_pb2.UNAVAILABLE,
}


SortedPageToken = Annotated[
    str | None, Query(description="`next_page_token` of the previous page (of the same `sort`)")
]


def _per_page(items: str, most: int) -> Any:
    return Query(description=f"{items} per page", json_schema_extra={"minimum": 1, "maximum": most})


def create_router(store: SpanStore, settings: Settings, logs: LogStore, metrics: MetricStore) -> APIRouter:
    router = APIRouter()
    budget = DecompressionBudget(settings.decompression_budget_bytes, settings.decompression_wait_seconds)
    for signal in signals(store, logs, metrics):
        _add_otlp_route(router, signal, settings, budget)

    @router.get(
        "/api/otel/metrics/{name}",
        tags=["otel"],
        summary="A GenAI metric's data points, oldest first",
        description=f"`name` is one of {', '.join(f'`{kept}`' for kept in KEPT)}: the histograms plughost keeps "
        "(other metrics are acknowledged over OTLP and not stored).",
        responses={**BAD_REQUEST, **NOT_FOUND},
    )
    async def metric_series(
        name: str,
        service: Annotated[str | None, Query(description="points of this service")] = None,
        limit: Annotated[
            int, Query(description="the latest points", json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT})
        ] = MAX_LIMIT,
    ) -> dict[str, Any]:
        if name not in KEPT:
            raise HTTPException(404, f"plughost keeps no metric {name[:100]!r}; it keeps {', '.join(KEPT)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise HTTPException(400, f"limit must be between 1 and {MAX_LIMIT}")
        return {"name": name, "points": await metrics.series(name, service, limit)}

    @router.get(
        "/api/otel/traces",
        tags=["otel"],
        summary="List traces, newest first or in another order",
        description="Filters combine (all must hold). `sort` orders the list by a key, ascending, or descending "
        "with a leading `-` (ties in trace id order, the same direction); `next_page_token` continues that order. "
        "Besides the parameters below, any number of "
        "`attr.<key>=<value>` parameters (up to 10) keep traces with a span whose attribute `<key>` has that value, "
        "compared as text (`true`/`false` for booleans, decimal for numbers; "
        "values over 256 characters are not indexed).",
        responses=BAD_REQUEST,
    )
    async def list_traces(
        service: Annotated[str | None, Query(description="traces with a span from this service")] = None,
        project: Annotated[str | None, Query(description="traces of this project")] = None,
        status: Annotated[
            Literal["ok", "error"] | None, Query(description="`error`: traces with an error span")
        ] = None,
        start_after: Annotated[
            Moment | None, Query(description="ISO 8601 (UTC when no offset); traces that started at or after")
        ] = None,
        start_before: Annotated[
            Moment | None, Query(description="ISO 8601 (UTC when no offset); traces that started before")
        ] = None,
        min_duration_ms: Annotated[
            float | None,
            Query(
                description="traces at least this long", json_schema_extra={"minimum": 0, "maximum": MAX_DURATION_MS}
            ),
        ] = None,
        limit: Annotated[int, _per_page("traces", MAX_LIMIT)] = 100,
        page_token: SortedPageToken = None,
        sort: Annotated[
            str,
            Query(
                description="`start_time`, `duration`, `tokens` (input + output), `spans` (span count), `errors` "
                "(error spans)" + (", `cost`" if "cost" in SORT_KEYS else "") + ": ascending; with a leading `-`, "
                "descending. Any other value gets 400 listing these.",
                json_schema_extra={"enum": list(SORTS)},
            ),
        ] = DEFAULT_SORT,
        session: Annotated[
            str | None, Query(description="traces of this session (`GET /api/otel/sessions` lists them)")
        ] = None,
        name: Annotated[str | None, Query(description="traces with a span of this name")] = None,
        model: Annotated[
            str | None,
            Query(
                description="traces with an LLM call to this model (`gen_ai.request.model` or `gen_ai.response.model`)"
            ),
        ] = None,
        min_tokens: Annotated[
            int | None,
            Query(
                description="traces whose LLM calls used at least this many tokens (input + output)",
                json_schema_extra={"minimum": 0},
            ),
        ] = None,
        attributes: dict[str, str] = Depends(_attribute_filters),
    ) -> dict[str, Any]:
        if not 1 <= limit <= MAX_LIMIT:
            raise HTTPException(400, f"limit must be between 1 and {MAX_LIMIT}")
        try:
            order = Order.parse(sort)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        if min_tokens is not None and not 0 <= min_tokens <= INT64_MAX:
            raise HTTPException(400, f"min_tokens must be between 0 and {INT64_MAX}")
        if min_duration_ms is not None and not (
            math.isfinite(min_duration_ms) and 0 <= min_duration_ms <= MAX_DURATION_MS
        ):
            raise HTTPException(400, f"min_duration_ms must be between 0 and {MAX_DURATION_MS:.0f}")
        where = TraceFilter(
            service=service,
            project=project,
            status=status,
            start_after_ns=_ns(start_after, "start_after"),
            start_before_ns=_ns(start_before, "start_before"),
            min_duration_ns=None if min_duration_ms is None else min(int(min_duration_ms * 1_000_000), INT64_MAX),
            attributes=tuple(attributes.items()),
            span_name=_term(name, "name"),
            model=_term(model, "model"),
            min_tokens=min_tokens,
            session=_term(session, "session"),
        )
        try:
            page, next_token = await store.list_traces(where, limit, page_token, order)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return {"traces": [trace_summary(row) for row in page], "next_page_token": next_token}

    sessions = SessionStore(store, logs)

    @router.get(
        "/api/otel/sessions",
        tags=["otel"],
        summary="List sessions (conversations: the traces whose spans name one session id), latest first",
        description="A trace belongs to the session its spans name (`session.id`, `gen_ai.conversation.id`, "
        "`langfuse.session.id`, `traceloop.association.properties.session_id`, "
        "`ai.telemetry.metadata.sessionId`). Each session sums its traces: `trace_count`, first and last time "
        "(the start of its first trace, the end of its last), LLM calls, tokens, error spans (`error_count`) "
        "and traces with an error (`error_traces`).",
        responses=BAD_REQUEST,
    )
    async def list_sessions(
        limit: Annotated[int, _per_page("sessions", MAX_LIMIT)] = 50,
        page_token: SortedPageToken = None,
        sort: Annotated[
            str,
            Query(
                description="`-last_time` (latest first) or `last_time`; any other value gets 400",
                json_schema_extra={"enum": list(SESSION_SORTS)},
            ),
        ] = SESSION_SORTS[0],
    ) -> dict[str, Any]:
        _check_limit(limit, MAX_LIMIT)
        if sort not in SESSION_SORTS:
            raise HTTPException(400, f"sort {sort[:64]!r} is not one of: {', '.join(SESSION_SORTS)}")
        try:
            page, next_token = await sessions.list_sessions(limit, page_token, sort)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return {"sessions": [session_view(row) for row in page], "next_page_token": next_token}

    @router.get(
        "/api/otel/sessions/{session_id:path}",
        tags=["otel"],
        summary="One session as a thread: its traces in start order, each turn's input and final answer",
        description="The session's totals (as listed) and `turns`: its traces oldest first, each a trace summary "
        "with `input` (the last user message of the trace's first LLM call) and `output` (the last message of "
        f"its last LLM call), as text cut at {MAX_TURN_CHARS} characters, or `null` when its calls carry no "
        "messages. Ask again with `page_token` = `next_page_token` for the next turns.",
        responses={**BAD_REQUEST, 404: {"description": "No trace of this session in this workspace."}},
    )
    async def get_session(
        session_id: Annotated[
            str,
            Path(
                description="the session id, as its spans name it (any characters, `/` too)", max_length=MAX_TERM_CHARS
            ),
        ],
        limit: Annotated[int, _per_page("turns", MAX_TURNS)] = 50,
        page_token: Annotated[str | None, Query(description="`next_page_token` of the previous page")] = None,
    ) -> dict[str, Any]:
        _check_limit(limit, MAX_TURNS)
        found = await sessions.get_session(session_id)
        if found is None:
            raise HTTPException(404, f"no session {session_id[:64]!r} in workspace {current_workspace()!r}")
        try:
            turns, next_token = await sessions.turns(session_id, limit, page_token)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        return {**session_view(found), "turns": turns, "next_page_token": next_token}

    @router.get(
        "/api/otel/traces/{trace_id}",
        tags=["otel"],
        summary="One trace with its spans (streamed; in pieces with `limit`)",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"application/json": {}},
                "description": "The trace summary and `spans`; without `limit`, every span and the span `tree`; "
                "with `limit`, up to that many spans in start order and `next_cursor` (`null` after the last piece).",
            },
            **BAD_REQUEST,
            **NOT_FOUND,
        },
    )
    async def get_trace(
        trace_id: TraceId,
        limit: Annotated[
            int | None,
            Query(
                description="spans in this piece (start order: a span's parent comes before it, clock skew aside)",
                json_schema_extra={"minimum": 1, "maximum": MAX_SPANS_PER_PIECE},
            ),
        ] = None,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous piece")] = None,
    ) -> StreamingResponse:
        if limit is None and cursor is not None:
            raise HTTPException(400, "cursor: give limit too (a cursor names where the next piece starts)")
        after = _cursor(cursor)
        summary = await _summary(store, trace_id)
        if limit is None:
            return StreamingResponse(_trace_json(store, logs, summary), media_type="application/json")
        _check_limit(limit, MAX_SPANS_PER_PIECE)
        piece = _Piece(store, summary, after, limit, SPANS_PER_STORE_PAGE)
        return StreamingResponse(_trace_piece_json(piece, store, logs), media_type="application/json")

    @router.get(
        "/api/otel/traces/{trace_id}/skeleton",
        tags=["otel"],
        summary="A trace's span tree in a few bytes a span, in pieces (streamed)",
        description="Every span without attributes, as compact rows in start order: "
        "`[span_id, parent, name, service, start_us, duration_us, flags, kind, model, input_tokens, output_tokens, "
        "cost_usd]`. `parent` is an index "
        "into this piece's `spans` when the parent is in it, else the parent's span id (`null` for a root); "
        "`name`, `service`, `kind` and `model` index this piece's `names`, `services`, `kinds` and `models`; "
        "times are whole microseconds after the trace's start (`start_time_unix_nano`); flags: 1 error, "
        "2 exception event, 8 a model call, 4 a model call whose tokens and cost a nested span carries; its tokens "
        "and cost (US dollars) as stored; trailing fields that say nothing are left out. Ask again with `cursor` = "
        "`next_cursor` until it is `null`. The full span: `GET /api/otel/traces/{trace_id}/spans/{span_id}`.",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/json": {}}}, **BAD_REQUEST, **NOT_FOUND},
    )
    async def get_skeleton(
        trace_id: TraceId,
        limit: Annotated[
            int,
            Query(description="spans in this piece", json_schema_extra={"minimum": 1, "maximum": MAX_SKELETON_PIECE}),
        ] = SKELETON_PIECE,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous piece")] = None,
    ) -> StreamingResponse:
        _check_limit(limit, MAX_SKELETON_PIECE)
        after = _cursor(cursor)
        summary = await _summary(store, trace_id)
        piece = _Piece(store, summary, after, limit, SKELETON_PAGE, SKELETON_COLUMNS)
        return StreamingResponse(_skeleton_json(piece, store), media_type="application/json")

    @router.get(
        "/api/otel/traces/{trace_id}/spans/{span_id}",
        tags=["otel"],
        summary="One span of a trace, with its attributes, events, links and the OTLP/JSON as sent",
        responses={404: {"description": "No such trace, or no such span in it, in this workspace."}},
    )
    async def get_span(trace_id: TraceId, span_id: SpanId) -> Response:
        workspace = current_workspace()
        row = await store.get_span(workspace, trace_id, span_id)
        if row is None:
            raise HTTPException(404, f"no span {span_id} in trace {trace_id} in workspace {workspace!r}")
        call = (await store.stored_calls(workspace, trace_id)).get(span_id)
        span_logs = by_span(await logs.for_trace(workspace, trace_id)).get(span_id, [])
        if is_huge(row["span"]):  # in pieces, as in a trace's JSON: its JSON at once held the GIL for seconds
            pieces = spans_json([row], [], first=True, calls={span_id: call} if call else {}, logs={span_id: span_logs})
            return StreamingResponse(_off_loop(pieces), media_type="application/json")
        body = await run_bulk(lambda: json.dumps(span_view(row, call=call, logs=span_logs)).encode())
        return Response(body, media_type="application/json")

    @router.get(
        "/api/otel/traces/{trace_id}/search",
        tags=["otel"],
        summary="The spans of a trace whose name, service or an attribute value holds some text",
        description="Case-insensitive; `matches` in start order, each with `where` it matched "
        "(`name`, `service` or `attribute`, with its `key`); `truncated` when there were more than `limit`.",
        responses={**BAD_REQUEST, **NOT_FOUND},
    )
    async def search_trace(
        trace_id: TraceId,
        q: Annotated[str, Query(description="the text to find", min_length=1, max_length=MAX_TERM_CHARS)],
        limit: Annotated[
            int, Query(description="matches at most", json_schema_extra={"minimum": 1, "maximum": MAX_SEARCH_MATCHES})
        ] = 100,
    ) -> dict[str, Any]:
        _check_limit(limit, MAX_SEARCH_MATCHES)
        summary = await _summary(store, trace_id)
        matches: list[dict[str, Any]] = []
        columns = ("span_id", "name", "service_name", "span")
        async for rows in store.span_pages(summary["workspace"], trace_id, SEARCH_PAGE, columns=columns):
            matches += await run_bulk(span_matches, rows, q)
            if len(matches) > limit:
                break
        return {"query": q, "matches": matches[:limit], "truncated": len(matches) > limit}

    @router.delete(
        "/api/otel/traces/{trace_id}", tags=["otel"], summary="Delete a trace", status_code=204, responses=NOT_FOUND
    )
    async def delete_trace(trace_id: TraceId) -> Response:
        if not await store.delete_trace(trace_id):
            raise HTTPException(404, f"no trace {trace_id} in workspace {current_workspace()!r}")
        await logs.delete_trace(trace_id)
        return Response(status_code=204)

    return router


def _add_otlp_route(router: APIRouter, signal: Signal, settings: Settings, budget: DecompressionBudget) -> None:
    """``POST /v1/<signal>``: OTLP/HTTP export of one signal, with the limits, workspace, project,
    ``partial_success`` and outage answers that every signal shares."""
    request_name = signal.request_type.__name__

    @router.post(
        f"/v1/{signal.name}",
        tags=["otel"],
        responses=OTLP_ERRORS,
        summary=f"OTLP/HTTP {signal.name} export",
        description=f"Accepts `application/x-protobuf` or `application/json` {request_name}, "
        f"optionally gzip or deflate encoded; answers an {request_name.replace('Request', 'Response')} in the same "
        "encoding. Errors are a google.rpc.Status in the same encoding.",
        openapi_extra=body_limit(settings.max_body_bytes, "PLUGHOST_OTEL_MAX_BODY_BYTES"),
    )
    async def ingest(request: Request) -> Response:  # one per signal: FastAPI names the route after it
        kind = PROTOBUF if request.headers.get("content-type", "").startswith(PROTOBUF) else JSON
        try:
            body = await _read_capped(request, settings.max_body_bytes)
        except PayloadError as error:
            return _status(kind, error.status, str(error))
        encoding = request.headers.get("content-encoding", "")
        inflated_bytes = stated_size(body, encoding, settings.max_decompressed_bytes)
        with bulk_work(inflated_bytes):
            return await store_request(request, kind, body, encoding, inflated_bytes)

    async def store_request(request: Request, kind: str, body: bytes, encoding: str, inflated_bytes: int) -> Response:
        """Inflate ``body`` in a thread that yields the CPU to the event loop (zlib lets go of the GIL),
        decode it off the loop, store its spans, and answer; its rows are freed on return."""
        options: dict[str, Any] = {
            "content_type": request.headers.get("content-type", ""),
            "limit": settings.max_decompressed_bytes,
            "workspace": current_workspace(),
            "project": request.headers.get(settings.project_header) or "default",
        }
        try:
            media_type(options["content_type"])  # 415 before any inflating
            compressed = encoding.strip().lower() not in ("", "identity")
            async with (
                budget.hold(most_inflated(len(body), settings.max_decompressed_bytes)) if compressed else nullcontext()
            ):
                payload = (
                    await run_bulk(_or_error, decompress, body, encoding, options["limit"], yield_cpu=True)
                    if compressed
                    else body
                )
                if isinstance(payload, PayloadError):
                    outcome: tuple[str, Decoded] | PayloadError = payload
                else:
                    inflated_bytes = max(inflated_bytes, len(payload))  # what it stated may have been less
                    outcome = await run_bulk(
                        partial(
                            _or_error,
                            decode_request,
                            payload,
                            encoding="",
                            request_type=signal.request_type,
                            rows=signal.rows,
                            **options,
                        )
                    )
                del payload  # the inflated body is not held while the spans are stored
            if isinstance(outcome, PayloadError):
                # answered, not raised: raised here, its traceback and this frame's `outcome` would
                # form a cycle that holds the body until a full collection
                return _status(kind, outcome.status, str(outcome))
            kind, decoded = outcome
        except PayloadError as error:
            return _status(kind, error.status, str(error))
        except BudgetExhausted:
            message = "too much is being decompressed at once (PLUGHOST_OTEL_DECOMPRESSION_BUDGET_BYTES); retry later"
            return _status(kind, 503, message, {"retry-after": RETRY_AFTER_SECONDS})
        stored = await signal.store(decoded, inflated_bytes, "OTLP/HTTP")
        if isinstance(stored, NotStored):
            return _status(kind, 503, stored.message, {"retry-after": RETRY_AFTER_SECONDS})
        return _encoded(kind, signal.answer(decoded, stored), 200)


async def _summary(store: SpanStore, trace_id: str) -> dict[str, Any]:
    """The stored summary of the trace in the current workspace; 404 when there is none."""
    workspace = current_workspace()
    summary = await store.get_summary(workspace, trace_id)
    if summary is None:
        raise HTTPException(404, f"no trace {trace_id} in workspace {workspace!r}")
    return summary


def _check_limit(limit: int, most: int) -> None:
    if not 1 <= limit <= most:
        raise HTTPException(400, f"limit must be between 1 and {most}")


def _cursor(cursor: str | None) -> SpanPosition | None:
    try:
        return None if cursor is None else decode_span_cursor(cursor)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


class _Piece:
    """Up to ``limit`` span rows of a trace after ``after`` in start order, read a store page at a time;
    once read, ``next_cursor`` names where the next piece starts (``None``: this was the last)."""

    def __init__(
        self,
        store: SpanStore,
        summary: dict[str, Any],
        after: SpanPosition | None,
        limit: int,
        page_size: int,
        columns: tuple[str, ...] | None = None,
    ) -> None:
        self.summary = summary
        self.limit = limit
        self.next_cursor: str | None = None
        self._last: dict[str, Any] = {}
        options = {} if columns is None else {"columns": columns}
        self._pages = store.span_pages(
            summary["workspace"], summary["trace_id"], page_size, after=after, limit=limit + 1, **options
        )

    async def pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        taken = 0
        async for page in self._pages:
            if taken + len(page) > self.limit:  # the one row past the limit: there is a next piece
                page = page[: self.limit - taken]
                if page:
                    yield page
                last = page[-1] if page else self._last
                self.next_cursor = encode_span_cursor((last["start_ns"], last["span_id"]))
                return
            taken += len(page)
            self._last = page[-1]
            yield page


def _attribute_filters(request: Request) -> dict[str, str]:
    """``attr.<key>=<value>`` query parameters (any number; all must hold, each on some span of the trace)."""
    found: dict[str, str] = {}
    for parameter, value in request.query_params.multi_items():
        if parameter.startswith(ATTRIBUTE_PREFIX):
            key = parameter[len(ATTRIBUTE_PREFIX) :]
            if not key:
                raise HTTPException(400, "attr.<key>: the attribute key is missing")
            found[_term(key, parameter)] = _term(value, parameter)
    if len(found) > MAX_ATTRIBUTE_FILTERS:
        raise HTTPException(400, f"at most {MAX_ATTRIBUTE_FILTERS} attr.<key> filters at once")
    return found


def _term(text: Term, name: str) -> Term:
    """A filter value as the index holds it; 400 for one it cannot hold (so it could never match)."""
    if text is not None and (len(text) > MAX_TERM_CHARS or "\0" in text):
        raise HTTPException(
            400, f"{name}: values longer than {MAX_TERM_CHARS} characters, or with NUL, are not indexed"
        )
    return text


def _or_error(function: Callable[..., T], *args: Any, **options: Any) -> T | PayloadError:
    """``function(*args, **options)``, with a :class:`PayloadError` returned, not raised: an error
    raised across the thread boundary sits in a reference cycle (traceback, frames, future) holding
    the body until the garbage collector runs, which after a burst of refused requests kept tens of MiB."""
    try:
        return function(*args, **options)
    except PayloadError as error:
        return error.with_traceback(None)


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refused past ``limit``. A big one is put together in a bulk thread: copying megabytes
    into a fresh buffer (and its page faults) took the event loop 0.5 ms a MiB."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadError(413, f"body is {declared} bytes; the limit is {limit} (PLUGHOST_OTEL_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadError(413, f"body is over the limit of {limit} bytes (PLUGHOST_OTEL_MAX_BODY_BYTES)")
        if chunk:  # the last message is often empty: a body that came in one piece is not copied
            chunks.append(chunk)
    if len(chunks) == 1:
        return chunks[0]
    return await run_bulk(b"".join, chunks, yield_cpu=True) if size >= LARGE_REQUEST_BYTES else b"".join(chunks)


def _status(kind: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _encoded(
        kind, status_pb2.Status(code=GRPC_CODES.get(status, code_pb2.UNKNOWN), message=message), status, headers
    )


def _encoded(kind: str, message: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    if kind == JSON:
        return Response(json_format.MessageToJson(message, indent=None), status, headers, media_type=JSON)
    return Response(message.SerializeToString(), status, headers, media_type=PROTOBUF)


async def _trace_json(store: SpanStore, logs: LogStore, summary: dict[str, Any]) -> AsyncIterator[str]:
    """``{summary..., "spans": [...], "tree": [...], "logs": [...]}``, read a page of spans at a time and encoded off
    the event loop in small pieces: a trace of any size neither stalls the server nor is held whole."""
    yield json.dumps(trace_summary(summary))[:-1] + ',"spans":['
    tree_nodes: list[dict[str, Any]] = []
    first = True
    workspace, trace_id = summary["workspace"], summary["trace_id"]
    calls = await store.stored_calls(workspace, trace_id)
    records = await logs.for_trace(workspace, trace_id)
    span_logs = by_span(records)
    async for rows in store.span_pages(workspace, trace_id):
        async for piece in _off_loop(spans_json(rows, tree_nodes, first=first, calls=calls, logs=span_logs)):
            yield piece
        first = False
    tree = await run_bulk(lambda: json.dumps(span_tree(tree_nodes)))
    yield '],"tree":' + tree + ',"logs":' + await run_bulk(json.dumps, records) + "}"


async def _off_loop(pieces: Iterator[str]) -> AsyncIterator[str]:
    """Each of ``pieces``, made in a bulk thread."""
    while (piece := await run_bulk(next, pieces, None)) is not None:
        yield piece


async def _trace_piece_json(piece: _Piece, store: SpanStore, logs: LogStore) -> AsyncIterator[str]:
    """``{summary..., "spans": [...], "next_cursor": ...}``: a piece of the trace, encoded as `_trace_json` does."""
    workspace, trace_id = piece.summary["workspace"], piece.summary["trace_id"]
    calls = await store.stored_calls(workspace, trace_id)
    span_logs = by_span(await logs.for_trace(workspace, trace_id))
    yield json.dumps(trace_summary(piece.summary))[:-1] + ',"spans":['
    first = True
    async for rows in piece.pages():
        async for text in _off_loop(spans_json(rows, [], first=first, calls=calls, logs=span_logs)):
            yield text
        first = False
    yield '],"next_cursor":' + json.dumps(piece.next_cursor) + "}"


async def _skeleton_json(piece: _Piece, store: SpanStore) -> AsyncIterator[str]:
    """One piece of the skeleton (see :mod:`.skeleton`), a store page at a time, each encoded off the event loop."""
    head = {**trace_summary(piece.summary), "fields": SKELETON_FIELDS}
    yield json.dumps(head)[:-1] + ',"spans":['
    calls = await store.stored_calls(piece.summary["workspace"], piece.summary["trace_id"])
    encoder = Piece(piece.summary["start_ns"], calls)
    async for rows in piece.pages():
        yield await run_bulk(encoder.rows_json, rows)
    yield "]," + encoder.tables_json() + ',"next_cursor":' + json.dumps(piece.next_cursor) + "}"


def _iso_8601_only(value: object) -> object:
    """Pydantic also reads a number (``0.5``) as seconds since 1970; a moment here is ISO 8601 text only."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z, not a number")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso_8601_only)]


def _ns(moment: datetime | None, name: str) -> int | None:
    """Nanoseconds since 1970 (a moment without offset is UTC); 400 outside what 64 bits hold."""
    try:
        return nanoseconds(moment, name)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
