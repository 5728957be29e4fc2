"""OTLP/HTTP trace payloads to rows: decompress (capped), parse protobuf or JSON, validate spans.

Pure functions, run off the event loop. Each span is kept as its own serialized
protobuf, so what was sent can be read back exactly; the columns beside it are
only what queries need.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from core import Pricing, jsonbody

from . import huge_span, wire
from .facts import SpanFacts, attribute_facts, call_cost, span_facts

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ACCEPTED_TYPES = (PROTOBUF, JSON)
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
INFLATE_PIECE_BYTES = 1024 * 1024
INFLATE_INPUT_BYTES = 64 * 1024
PARSE_IN_PIECES_BYTES = 2 * 1024 * 1024
PARSE_PIECE_BYTES = 512 * 1024
GZIP_TRAILER_BYTES = 8  # CRC-32, then the inflated size modulo 2**32, both little-endian
DEFLATE_MAX_RATIO = 1032  # no deflate stream inflates to more than 1032 times its size, plus headers
INT64_MAX = 2**63 - 1  # SQL BIGINT; OTLP times are uint64, so larger ones cannot be stored
NO_HUGE_SPANS: Mapping[int, wire.SplitSpan] = MappingProxyType({})
GENAI_PRICES = Pricing()
"""The genai-prices data set alone, without ``PLUGHOST_PRICES`` (the span store brings the app's pricing)."""


class PayloadError(ValueError):
    """The request cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Decoded:
    rows: list[dict[str, Any]]
    rejected: int
    reasons: list[str]


def media_type(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in ACCEPTED_TYPES:
        raise PayloadError(415, f"unsupported Content-Type {content_type or '(none)'!r}; send {PROTOBUF} or {JSON}")
    return kind


def decompress(body: bytes, encoding: str, limit: int) -> bytes | bytearray:
    """Undo ``Content-Encoding`` (gzip, deflate as zlib or raw), never producing more than ``limit`` bytes.

    A gzip body may hold several members one after another (RFC 1952 2.2): each is inflated, and
    anything after a member that is not one gets 400, never a silent truncation."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadError(
                413, f"body is {len(body)} bytes; the limit is {limit} (PLUGHOST_OTEL_MAX_DECOMPRESSED_BYTES)"
            )
        return body
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS if _has_zlib_header(body) else -zlib.MAX_WBITS
    else:
        raise PayloadError(415, f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none")
    payload = bytearray()  # grown in place, piece by piece: never a second copy of the whole
    view = memoryview(body)
    start = 0
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            end = _inflate_stream(inflater, view, start, payload, limit)
            if len(payload) > limit or not inflater.eof or encoding != "gzip" or end == len(body):
                break
            if end <= start:  # cannot happen for a stream that ended; never loop on it if it does
                raise PayloadError(400, "body is not valid gzip data: a member of no length")
            start = end
    except zlib.error as error:
        raise PayloadError(400, f"body is not valid {encoding} data: {error}") from None
    if len(payload) > limit:
        raise PayloadError(413, f"body inflates past {limit} bytes (PLUGHOST_OTEL_MAX_DECOMPRESSED_BYTES); refused")
    if not inflater.eof:
        raise PayloadError(400, f"{encoding} body is truncated")
    return payload


def _inflate_stream(inflater: Any, view: memoryview, start: int, payload: bytearray, limit: int) -> int:
    """Inflate the one deflate stream that begins at ``view[start]`` into ``payload``, stopping once it
    holds more than ``limit`` bytes; returns where the stream's input ended."""
    position = start
    pending: bytes | memoryview = b""
    while not inflater.eof and len(payload) <= limit:
        if not pending and position < len(view):  # fed in small inputs: each unconsumed tail is a small copy
            pending = view[position : position + INFLATE_INPUT_BYTES]
            position += len(pending)
        piece = inflater.decompress(pending, min(INFLATE_PIECE_BYTES, limit + 1 - len(payload)))
        pending = inflater.unconsumed_tail
        if not piece and position == len(view):
            break  # the input ended before the stream did
        payload += piece
    # The input of the last call ended at ``position``; what followed the stream in it is
    # ``unused_data`` (which CPython may also leave in ``unconsumed_tail``: not counted twice).
    return position - len(inflater.unused_data) if inflater.eof else position


def stated_size(body: bytes, encoding: str, limit: int) -> int:
    """What ``body`` says it inflates to, at most ``limit``: known before inflating it, to choose how to
    handle it (never to limit it). A gzip member states its size in its trailer, believed up to the
    most its size can inflate to (of several members, the last one's: the real size is known later);
    deflate states none, so the most it can produce; an unencoded body is its own size."""
    encoding = encoding.strip().lower()
    if encoding == "gzip" and len(body) >= GZIP_TRAILER_BYTES:
        return min(most_inflated(len(body), limit), int.from_bytes(body[-4:], "little"))
    if encoding == "deflate":
        return most_inflated(len(body), limit)
    return len(body)


def most_inflated(compressed_bytes: int, limit: int) -> int:
    """The most that ``compressed_bytes`` of deflate data (gzip and zlib included) inflate to, capped at ``limit``."""
    return min(limit, compressed_bytes * DEFLATE_MAX_RATIO + 1024)


def _has_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def parse(payload: bytes | bytearray, kind: str, request_type: type[Message] = ExportTraceServiceRequest) -> Any:
    """An OTLP export request (traces by default; logs or metrics by ``request_type``) from its body."""
    return _parse(payload, kind, request_type, huge_bytes=None)[0]


def rows_of(
    payload: bytes | bytearray, kind: str, request_type: type[Message], rows: Callable[..., Decoded], **options: Any
) -> Decoded:
    """The rows of an OTLP export request's body, made by ``rows(request, **options)``. A span too big to parse
    whole (see :mod:`.huge_span`) is parsed without its attributes, which ``rows`` gets apart as ``huge_spans``."""
    huge_bytes = huge_span.HUGE_SPAN_BYTES if request_type is ExportTraceServiceRequest else None
    request, huge_spans = _parse(payload, kind, request_type, huge_bytes)
    return rows(request, **options, **({"huge_spans": huge_spans} if huge_spans else {}))


def _parse(
    payload: bytes | bytearray, kind: str, request_type: type[Message], huge_bytes: int | None
) -> tuple[Any, dict[int, wire.SplitSpan]]:
    request = request_type()
    huge_spans: dict[int, wire.SplitSpan] = {}
    try:
        if kind == PROTOBUF:
            huge_spans = _parse_protobuf(payload, request, huge_bytes)
        else:
            document = jsonbody.loads(payload)
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, TypeError, AttributeError) as error:
        raise _not_valid(request_type, kind, error) from None
    return request, huge_spans


def _not_valid(request_type: type[Message], kind: str, error: Exception) -> PayloadError:
    return PayloadError(400, f"body is not a valid OTLP {request_type.__name__} ({kind}): {str(error)[:300]}")


def _parse_protobuf(payload: bytes | bytearray, request: Message, huge_bytes: int | None) -> dict[int, wire.SplitSpan]:
    """A big request is parsed in pieces of about ``PARSE_PIECE_BYTES``, so that no single parse
    holds the GIL (and so the event loop) for long: see :mod:`.wire`. A span over ``huge_bytes`` is
    parsed without its attributes; it is returned split, by the index of the ``ResourceSpans`` holding it."""
    if len(payload) >= PARSE_IN_PIECES_BYTES:
        huge_spans: dict[int, wire.SplitSpan] = {}
        try:
            huge = None if huge_bytes is None else (huge_bytes, huge_span.ATTRIBUTE_RUN_BYTES)
            for piece, split in wire.pieces(payload, PARSE_PIECE_BYTES, huge):
                request.MergeFromString(piece)
                if split is not None:
                    huge_spans[len(request.resource_spans) - 1] = split  # type: ignore[attr-defined]
            return huge_spans
        except wire.Malformed:
            request.Clear()  # protobuf's own parse below says what is wrong, or accepts what the walk did not expect
    request.ParseFromString(payload)  # type: ignore[arg-type]  # any buffer parses; the stub says bytes
    return {}


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP/JSON writes ids as hex; protobuf's JSON parser reads bytes as base64 (and would silently
    mis-decode hex into wrong 24-byte ids), so convert them first. What is not of OTLP's shape is left as it
    is, for the parser to refuse naming the field."""
    if not isinstance(document, dict):
        raise ValueError("the JSON body must be an object")
    for resource_spans in _objects(document, "resourceSpans"):
        for scope_spans in _objects(resource_spans, "scopeSpans"):
            for span in _objects(scope_spans, "spans"):
                for key in ("traceId", "spanId", "parentSpanId"):
                    _convert_id(span, key)
                for link in _objects(span, "links"):
                    _convert_id(link, "traceId")
                    _convert_id(link, "spanId")
    for resource_logs in _objects(document, "resourceLogs"):
        for scope_logs in _objects(resource_logs, "scopeLogs"):
            for record in _objects(scope_logs, "logRecords"):
                _convert_id(record, "traceId")
                _convert_id(record, "spanId")


def _objects(holder: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects of the array ``holder[key]``; none when it is not an array (``{"resourceSpans": 5}``)."""
    found = holder.get(key)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _convert_id(holder: dict[str, Any], key: str) -> None:
    value = holder.get(key)
    if not value:
        return
    try:
        holder[key] = base64.b64encode(bytes.fromhex(value)).decode()
    except (ValueError, TypeError):
        raise ValueError(f"{key} {value!r} is not a hex string") from None


def to_rows(
    request: ExportTraceServiceRequest,
    *,
    workspace: str,
    project: str,
    pricing: Pricing = GENAI_PRICES,
    huge_spans: Mapping[int, wire.SplitSpan] = NO_HUGE_SPANS,
) -> Decoded:
    """One row per valid span (the span table's columns, plus the terms, GenAI usage and cost the store
    indexes and sums, see :mod:`.facts`); invalid spans are counted and described, not stored.
    ``huge_spans``: the spans parsed without their attributes, by their ``ResourceSpans``' index (see
    :func:`rows_of`); such a span is stored as received."""
    rows: list[dict[str, Any]] = []
    rejected = 0
    reasons: list[str] = []
    # one tuple per distinct term in the request: spans repeat their attributes' keys and values, and
    # a (key, value) tuple a span (175 bytes) made a 1.8 M-attribute request's terms 350 MiB, not 10
    interned: dict[tuple[str, str], tuple[str, str]] = {}
    for index, resource_spans in enumerate(request.resource_spans):
        resource = resource_spans.resource
        service = (
            next((a.value.string_value for a in resource.attributes if a.key == "service.name"), "")
            or "unknown_service"
        )
        resource_bytes = resource.SerializeToString()
        shared = _unstorable_text(
            service=service, project=project, workspace=workspace, resource_schema_url=resource_spans.schema_url
        )
        split = huge_spans.get(index)  # then the one span of this ResourceSpans
        for scope_spans in resource_spans.scope_spans:
            scope_bytes = scope_spans.scope.SerializeToString()
            scope_problem = shared or _unstorable_text(scope_schema_url=scope_spans.schema_url)
            for span in scope_spans.spans:
                problem = _invalid(span) or scope_problem
                if problem:
                    rejected += 1
                    if len(reasons) < 5:
                        reasons.append(problem)
                    continue
                facts = span_facts(span, service) if split is None else _huge_span_facts(span, service, split)
                terms = facts.terms
                if not isinstance(terms, list):  # a list is a span of many attributes' own (see SpanFacts.terms)
                    terms = tuple([interned.setdefault(term, term) for term in terms])
                rows.append(
                    {
                        "workspace": workspace,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "name": span.name,
                        "kind": span.kind,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "status_code": span.status.code,
                        "service_name": service,
                        "project": project,
                        "span": span.SerializeToString() if split is None else split.record,
                        "resource": resource_bytes,
                        "resource_schema_url": resource_spans.schema_url,
                        "scope": scope_bytes,
                        "scope_schema_url": scope_spans.schema_url,
                        # beside the span's columns: what the store indexes and sums (not columns of the span)
                        "terms": terms,
                        "llm": facts.llm,
                        "llm_call": facts.llm_call,
                        "input_tokens": facts.input_tokens,
                        "output_tokens": facts.output_tokens,
                        "cost_usd": call_cost(facts.llm, pricing, span.start_time_unix_nano),
                    }
                )
    return Decoded(rows, rejected, reasons)


def _huge_span_facts(span: Any, service: str, split: wire.SplitSpan) -> SpanFacts:
    """The facts of a span parsed without its attributes, read from ``split`` a run at a time."""
    try:
        return attribute_facts(span.name, service, huge_span.attribute_runs(split), many=True)
    except DecodeError as error:
        raise _not_valid(ExportTraceServiceRequest, PROTOBUF, error) from None


def _invalid(span: Any) -> str:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"span {span.name!r}: trace_id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span {span.name!r}: span_id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: parent_span_id must be 8 bytes or empty"
    if span.end_time_unix_nano < span.start_time_unix_nano:
        return f"span {span.name!r}: ends before it starts"
    if span.end_time_unix_nano > INT64_MAX:
        return f"span {span.name!r}: times past {INT64_MAX} ns (year 2262) cannot be stored"
    if "\0" in span.name:
        return f"span {span.name!r}: a NUL character in the name cannot be stored"
    return ""


def _unstorable_text(**fields: str) -> str:
    """Text columns cannot hold NUL on PostgreSQL: say which field has one (``""`` when none does)."""
    for field, value in fields.items():
        if "\0" in value:
            return f"{field} {value!r}: a NUL character cannot be stored"
    return ""


def decode_request(
    body: bytes,
    *,
    content_type: str,
    encoding: str,
    limit: int,
    workspace: str,
    project: str,
    request_type: type[Message] = ExportTraceServiceRequest,
    rows: Callable[..., Decoded] | None = None,
) -> tuple[str, Decoded]:
    """The whole pipeline, for one call off the event loop: returns the media type and the rows.

    A :class:`PayloadError` leaves without the frames that raised it: their locals (up to the whole
    inflated body) would otherwise live on in the traceback, beyond the decompression budget, until
    the garbage collector broke the exception's reference cycles.
    """
    kind = media_type(content_type)
    try:
        payload = decompress(body, encoding, limit)
        return kind, rows_of(payload, kind, request_type, rows or to_rows, workspace=workspace, project=project)
    except PayloadError as error:
        raise error.with_traceback(None) from None
