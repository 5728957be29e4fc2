"""What the store keeps about a span beside the span itself: its search terms and its GenAI usage.

- **Terms** are ``(key, value)`` pairs that ``GET /api/otel/traces`` filters on: every
  scalar span attribute (``attr.<key>=<value>``), the span name (under the key
  :data:`SPAN_NAME_KEY`, which no attribute can have: OpenTelemetry keys are never
  empty) and the service (``service.name``). Values are compared as text: ``true``
  and ``false`` for booleans, decimal for numbers. Values longer than
  :data:`MAX_TERM_CHARS`, arrays, maps and bytes are not indexed.
- **GenAI usage** follows the OpenTelemetry GenAI semantic conventions. An LLM call is
  a span whose ``gen_ai.operation.name`` is a model operation (chat, completion,
  embeddings...), or that names no operation but a ``gen_ai.request.model`` /
  ``gen_ai.response.model``. Its tokens are ``gen_ai.usage.input_tokens`` and
  ``gen_ai.usage.output_tokens``; tokens on other spans (an agent span that totals
  its children) are not counted again. A SERVER span is the serving side of a call (an
  LLM gateway, a model server) whose caller or upstream CLIENT span is the call itself:
  it is never counted, so a call traced on both sides counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SPAN_NAME_KEY = ""
MAX_TERM_CHARS = 256
MODEL_KEYS = ("gen_ai.request.model", "gen_ai.response.model")
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
OPERATION = "gen_ai.operation.name"
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
SPAN_KIND_SERVER = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER
MAX_TOKENS = 2**40  # far above any real call; keeps sums inside BIGINT whatever a client claims


@dataclass(frozen=True)
class SpanFacts:
    terms: tuple[tuple[str, str], ...]
    """A tuple, not a set: tuples of strings drop out of the cyclic GC after one pass, so a request of
    150,000 spans does not leave a million tracked objects for a full collection to walk."""
    llm_call: bool
    input_tokens: int
    output_tokens: int


def span_facts(span: Any, service: str) -> SpanFacts:
    """The terms and GenAI usage of a parsed OTLP span from ``service``."""
    terms = {("service.name", service)} if _indexable(service) else set()
    if _indexable(span.name):
        terms.add((SPAN_NAME_KEY, span.name))
    genai: dict[str, Any] = {}
    for pair in span.attributes:
        value = term_value(pair.value)
        if value is not None and pair.key and _indexable(pair.key):
            terms.add((pair.key, value))
        if pair.key.startswith("gen_ai."):
            genai[pair.key] = pair.value
    operation = genai[OPERATION].string_value if OPERATION in genai else None
    has_model = any(key in genai for key in MODEL_KEYS)
    llm_call = span.kind != SPAN_KIND_SERVER and (operation in MODEL_OPERATIONS if operation else has_model)
    return SpanFacts(
        tuple(terms),
        llm_call,
        _tokens(genai.get(INPUT_TOKENS)) if llm_call else 0,
        _tokens(genai.get(OUTPUT_TOKENS)) if llm_call else 0,
    )


def term_value(value: Any) -> str | None:
    """An attribute value as the text a filter compares with, or ``None`` when it is not indexed."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
    elif kind == "bool_value":
        text = "true" if value.bool_value else "false"
    elif kind == "int_value":
        text = str(value.int_value)
    elif kind == "double_value":
        text = repr(value.double_value)
    else:
        return None
    return text if _indexable(text) else None


def _indexable(text: str) -> bool:
    return len(text) <= MAX_TERM_CHARS and "\0" not in text


def _tokens(value: Any) -> int:
    if value is None:
        return 0
    kind = value.WhichOneof("value")
    count: int
    if kind == "int_value":
        count = value.int_value
    elif kind == "double_value" and value.double_value == value.double_value:
        count = int(min(value.double_value, MAX_TOKENS))
    elif kind == "string_value" and value.string_value.isdigit():
        count = int(value.string_value[:15])
    else:
        return 0
    return max(0, min(count, MAX_TOKENS))
