"""What the store keeps about a span beside the span itself: its search terms and its GenAI usage.

- **Terms** are ``(key, value)`` pairs that ``GET /api/otel/traces`` filters on: every
  scalar span attribute (``attr.<key>=<value>``), the span name (under the key
  :data:`SPAN_NAME_KEY`, which no attribute can have: OpenTelemetry keys are never
  empty) and the service (``service.name``). Values are compared as text: ``true``
  and ``false`` for booleans, decimal for numbers. Values longer than
  :data:`MAX_TERM_CHARS`, arrays, maps and bytes are not indexed.
- **LLM facts** are what :func:`.conventions.llm_facts` reads from the span's attributes
  (whichever convention it follows): what the span is (an LLM call, a tool, an agent...),
  its models, provider and token counts. A model call's tokens are summed in its trace's
  summary, each call once (see :func:`.conventions.counted_calls`).
- A model call's **cost** is what the span reports (``llm.cost.total``, ``gen_ai.usage.cost``,
  ``mlflow.llm.cost``: the instrumentation knew the price), else what ``core.pricing`` makes of its
  provider, models and tokens; ``None`` when neither knows.
- An MLflow span's attribute values are JSON-encoded strings: its terms hold them decoded
  (``attr.mlflow.llm.model=x`` finds the span stored as ``"x"``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core import Pricing, empty

from .conventions import FACT_KEYS, NOTHING, LlmFacts, is_mlflow, json_value, llm_facts
from .present import any_value

SPAN_NAME_KEY = ""
MAX_TERM_CHARS = 256
MANY_ATTRIBUTES = 10_000
"""A span with more attributes than this has its terms made distinct in many small sets, and kept in a list."""
DISTINCT_SETS = 256
"""How many sets the terms of a span of many attributes are spread over (7,000 each for 1.8 M attributes)."""

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class SpanFacts:
    terms: Sequence[tuple[str, str]]
    """A tuple, not a set: tuples of strings drop out of the cyclic GC after one pass, so a request of
    150,000 spans does not leave a million tracked objects for a full collection to walk. A list for a
    span of many attributes (see :func:`distinct`): it can be emptied a term at a time, where freeing a
    tuple of 1.8 M terms held the GIL for a second."""
    llm: LlmFacts

    @property
    def llm_call(self) -> bool:
        return self.llm.model_call

    @property
    def input_tokens(self) -> int:
        return (self.llm.input_tokens or 0) if self.llm.model_call else 0

    @property
    def output_tokens(self) -> int:
        return (self.llm.output_tokens or 0) if self.llm.model_call else 0


def call_cost(llm: LlmFacts, pricing: Pricing, at_ns: int) -> float | None:
    """What a model call cost, in US dollars (see the module's docstring); ``None`` for other spans."""
    if not llm.model_call:
        return None
    if llm.cost is not None and math.isfinite(llm.cost) and llm.cost >= 0:
        return llm.cost
    return pricing.cost(
        llm.provider,
        (llm.response_model, llm.request_model),
        llm.input_tokens,
        llm.output_tokens,
        llm.cached_tokens,
        llm.reasoning_tokens,
        at_ns,
        cache_write_tokens=llm.cache_write_tokens,
    )


def span_facts(span: Any, service: str) -> SpanFacts:
    """The terms and LLM facts of a parsed OTLP span from ``service``."""
    return attribute_facts(span.name, service, (span.attributes,), many=len(span.attributes) > MANY_ATTRIBUTES)


def attribute_facts(name: str, service: str, runs: Iterable[Iterable[Any]], *, many: bool) -> SpanFacts:
    """The terms and LLM facts of the span ``name`` from ``service`` whose attributes (``KeyValue``
    messages) come in ``runs``; ``many``: so many that they are made distinct as :func:`distinct` does."""
    found: list[tuple[str, str]] | set[tuple[str, str]] = [] if many else set()
    add = found.append if isinstance(found, list) else found.add
    if _indexable(service):
        add(("service.name", service))
    if _indexable(name):
        add((SPAN_NAME_KEY, name))
    read: dict[str, Any] = {}
    for pairs in runs:
        for pair in pairs:
            key = pair.key
            value = term_value(pair.value)
            if value is not None and key and _indexable(key):
                add((key, value))
            if key in FACT_KEYS:
                read[key] = any_value(pair.value)
    if read and is_mlflow(read):
        found = _decoded_terms(found)
    terms = distinct(found) if isinstance(found, list) else tuple(found)
    return SpanFacts(terms, llm_facts(read) if read else NOTHING)


def distinct(items: list[T]) -> list[T]:
    """The distinct ``items`` in their first order, emptying ``items`` (last first) on the way. One set of
    them all would stall the event loop: growing a set of 1.8 M terms rehashes them all in one C call
    (100 ms), as does freeing it; here they are spread over :data:`DISTINCT_SETS` small sets, freed one
    at a time."""
    sets: list[set[T]] = [set() for _ in range(DISTINCT_SETS)]
    found: list[T] = []
    for item in items:
        held = sets[hash(item) % DISTINCT_SETS]
        if item not in held:
            held.add(item)
            found.append(item)
    empty(items)
    empty(sets)
    return found


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


def _decoded_terms(
    found: list[tuple[str, str]] | set[tuple[str, str]],
) -> list[tuple[str, str]] | set[tuple[str, str]]:
    """An MLflow span's terms with their values decoded (see :func:`_decoded_term`); a list is emptied a term
    at a time (see ``SpanFacts.terms``)."""
    if isinstance(found, set):
        return {(key, _decoded_term(value)) for key, value in found}
    decoded = [(key, _decoded_term(value)) for key, value in found]
    empty(found)
    return decoded


def _decoded_term(text: str) -> str:
    """An MLflow value as text: a JSON string is its content (numbers and booleans read alike)."""
    if text[:1] != '"':
        return text
    value = json_value(text)
    return value if isinstance(value, str) and _indexable(value) else text
