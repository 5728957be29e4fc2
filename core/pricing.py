"""What an LLM call cost, in US dollars: the ``genai-prices`` data set, with a price table of one's own on top.

Every part of plughost that shows money (the trace store, the gateway's usage, the assistant) prices a
call here, so they agree. A call is priced from its provider (as OpenTelemetry's ``gen_ai.provider.name``
or an instrumentation's ``llm.provider``/``llm.system`` name it), its models (the response's model first,
then the requested one) and its tokens:

- **Overrides first**: a price the caller knows for this call (a gateway model's own), then
  ``PLUGHOST_PRICES`` (see :class:`TokenPrice`), by exact model name, for private models and
  negotiated prices.
- **Then genai-prices**, with the provider when one is named: a provider it does not know gives no price
  (a local server's ``llama3`` is not priced as some host's); without a provider, the model's name
  decides, as genai-prices matches it. Cached input tokens and reasoning tokens are priced apart where
  its data distinguishes them; the price in force at the call's time is used.
- **Else** ``None``: an unknown model is never guessed.

Tokens follow the OpenTelemetry GenAI conventions: input tokens include the cached ones and output tokens
the reasoning ones. A count that cannot be part of its total (cached above input, as Anthropic's API
reports them) is read as coming on top of it.

The data set is loaded on first use (about 0.1 s of CPU): call :meth:`Pricing.cost` off the event loop
(``core.run_bulk``), or after :meth:`Pricing.load` has run there. A lookup of a (provider, model) is
remembered, a miss too, so that pricing a call costs about 0.1 ms.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

MILLION = 1_000_000
LOOKUPS_REMEMBERED = 4096
"""(provider, model) look-ups kept: model names come from clients, so their number has a bound."""
PROVIDER_NAMES = {"x_ai": "x-ai", "gcp.gen_ai": "google"}
"""OpenTelemetry's provider names that genai-prices spells otherwise (it matches the others itself)."""


class TokenPrice(BaseModel):
    """A model's price in US dollars per million tokens, as ``PLUGHOST_PRICES`` gives it by model name:
    ``{"my-model": {"input": 0.5, "output": 1.5, "cached_input": 0.05}}``."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    """Per million cached (cache-read) input tokens; unset: the input price."""

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (input_tokens - cached_tokens) * self.input + cached_tokens * cached_price + output_tokens * self.output
        ) / MILLION


class Pricing:
    """Prices LLM calls; one per app (``host.pricing``), shared by every plugin."""

    def __init__(self, overrides: Mapping[str, TokenPrice] | None = None) -> None:
        self.overrides = dict(overrides or {})

    def load(self) -> None:
        """Load the genai-prices data set now (a tenth of a second of CPU; run it off the event loop)."""
        _snapshot()

    def cost(
        self,
        provider: str | None,
        models: Sequence[str | None],
        input_tokens: int | None,
        output_tokens: int | None,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        at_ns: int | None = None,
        price: TokenPrice | None = None,
    ) -> float | None:
        """The call's cost in US dollars, or ``None`` when none of ``models`` has a known price or the call
        reports no tokens. ``at_ns``: when the call was made (nanoseconds since 1970; unset: now);
        ``price``: the call's own price, before any other."""
        if input_tokens is None and output_tokens is None:
            return None
        names = [model for model in models if isinstance(model, str) and model]
        if not names and price is None:
            return None
        input_tokens, output_tokens = input_tokens or 0, output_tokens or 0
        cached = cached_tokens or 0
        if cached > input_tokens:
            input_tokens += cached
        reasoning = reasoning_tokens or 0
        if reasoning > output_tokens:
            output_tokens += reasoning
        override = price or next((self.overrides[name] for name in names if name in self.overrides), None)
        if override is not None:
            return override.cost(input_tokens, output_tokens, cached)
        for name in names:
            found = _lookup(provider.lower() if provider else None, name)
            if found is not None:
                usage = _usage(input_tokens, output_tokens, cached, reasoning)
                when = datetime.fromtimestamp(at_ns / 1e9, UTC) if at_ns is not None else None
                try:
                    return float(found[1].calc_price(usage, found[0], genai_request_timestamp=when).total_price)
                except (ValueError, ArithmeticError):  # a usage its data cannot price
                    return None
        return None


@functools.lru_cache(maxsize=1)
def _snapshot() -> Any:
    from genai_prices.data_snapshot import get_snapshot

    return get_snapshot()


@functools.lru_cache(maxsize=LOOKUPS_REMEMBERED)
def _lookup(provider: str | None, model: str) -> tuple[Any, Any] | None:
    """genai-prices' (provider, model info) for a call, or ``None`` (an unknown provider, or model)."""
    provider_id = PROVIDER_NAMES.get(provider, provider) if provider else None
    try:  # a provider it does not know raises too
        found: tuple[Any, Any] = _snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return found


def _usage(input_tokens: int, output_tokens: int, cached: int, reasoning: int) -> Any:
    from genai_prices import Usage

    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached or None,
        output_reasoning_tokens=reasoning or None,
    )
