"""Test material for plugins that read otel's traces (the assistant's tests): what the query API says of a
span, computed by otel's own reading, so that a test can build API-shaped spans by hand without reaching
into otel's modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .conventions import StoredCall
from .conversation import span_genai


def genai_view(
    attributes: dict[str, Any],
    *,
    counted: bool = True,
    cost_usd: float | None = None,
    events: Iterable[dict[str, Any]] = (),
) -> dict[str, Any] | None:
    """A span's ``genai`` view as ``GET /api/otel/traces/{id}`` gives it, for a span of these ``attributes``
    and span ``events`` (``{"name", "attributes"}``): a model call carrying its call when ``counted``, costing
    ``cost_usd``; ``None`` for a span that says nothing about an LLM app."""
    triples = [(event["name"], event["attributes"], event["attributes"]) for event in events]
    return span_genai(attributes, StoredCall(counted, cost_usd), triples)
