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
  its data distinguishes them, and so are input tokens written to a provider's prompt cache (Anthropic's
  ``cache_creation_input_tokens``, at 1.25 times the input price); the price in force at the call's time
  is used.
- **Else** ``None``: an unknown model is never guessed.

Tokens follow the OpenTelemetry GenAI conventions: input tokens include the cache reads and cache writes,
and output tokens the reasoning ones. Counts that cannot be part of their total (cache reads and writes
above the input count, as Anthropic's API reports them) are read as coming on top of it.

The data set is loaded on first use (about 0.1 s of CPU): call :meth:`Pricing.cost` off the event loop
(``core.run_bulk``), or after :meth:`Pricing.load` has run there. A lookup of a (provider, model) is
remembered, a miss too. genai-prices' own calculation takes about 0.1 ms a call, ten times the rest of
a span's ingest: where a model's price is linear in the tokens (no tiers), what genai-prices charges
for a million tokens of each kind is asked once per price in force and the call priced from those
(in exact decimals, so to the same float as genai-prices' own result); a tiered price is computed by
genai-prices every time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
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
    cache_write_input: float | None = Field(None, ge=0)
    """Per million input tokens written to the prompt cache; unset: the input price."""

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int, cache_write_tokens: int = 0) -> float:
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write_input is None else self.cache_write_input
        uncached = input_tokens - cached_tokens - cache_write_tokens
        return (
            uncached * self.input
            + cached_tokens * cached_price
            + cache_write_tokens * write_price
            + output_tokens * self.output
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
        cache_write_tokens: int | None = None,
    ) -> float | None:
        """The call's cost in US dollars, or ``None`` when none of ``models`` has a known price or the call
        reports no tokens. ``cached_tokens``: input tokens read from the prompt cache; ``cache_write_tokens``:
        input tokens written to it; ``at_ns``: when the call was made (nanoseconds since 1970; unset: now);
        ``price``: the call's own price, before any other."""
        if input_tokens is None and output_tokens is None:
            return None
        names = [model for model in models if isinstance(model, str) and model]
        if not names and price is None:
            return None
        input_tokens, output_tokens = input_tokens or 0, output_tokens or 0
        cached, written = cached_tokens or 0, cache_write_tokens or 0
        if cached + written > input_tokens:
            input_tokens += cached + written
        reasoning = reasoning_tokens or 0
        if reasoning > output_tokens:
            output_tokens += reasoning
        override = price or next((self.overrides[name] for name in names if name in self.overrides), None)
        if override is not None:
            return override.cost(input_tokens, output_tokens, cached, written)
        for name in names:
            found = _lookup(provider.lower() if provider else None, name)
            if found is not None:
                when = datetime.fromtimestamp(at_ns / 1e9, UTC) if at_ns is not None else datetime.now(UTC)
                try:
                    return _price(found, when, input_tokens, output_tokens, cached, written, reasoning)
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


def _price(
    found: tuple[Any, Any],
    when: datetime,
    input_tokens: int,
    output_tokens: int,
    cached: int,
    written: int,
    reasoning: int,
) -> float:
    """genai-prices' price of the call: from the per-million prices of the price in force, when it is linear."""
    provider, model = found
    rates = _rates(provider, model, model.get_prices(when), when)
    if rates is None:
        usage = _usage(input_tokens, output_tokens, cached, written, reasoning)
        return float(model.calc_price(usage, provider, genai_request_timestamp=when).total_price)
    fixed, per_input, per_output, per_cached, per_written, per_reasoning = rates
    tokens = (
        input_tokens * per_input
        + output_tokens * per_output
        + cached * per_cached
        + written * per_written
        + reasoning * per_reasoning
    )
    return float(fixed + tokens / MILLION)


_RATES: dict[int, tuple[Any, tuple[Decimal, ...] | None]] = {}
"""By the identity of a price in force (genai-prices' ``ModelPrice``, one object per model and period, kept
beside it so that the identity stays its own): what a call costs with no tokens, and the extra of a million
input, output, cache-read, cache-write and reasoning tokens; ``None`` for a tiered price."""


def _rates(provider: Any, model: Any, model_price: Any, when: datetime) -> tuple[Decimal, ...] | None:
    known = _RATES.get(id(model_price))
    if known is not None and known[0] is model_price:
        return known[1]
    from genai_prices.types import TieredPrices

    rates: tuple[Decimal, ...] | None = None
    if not any(isinstance(value, TieredPrices) for value in vars(model_price).values()):

        def charged(input_tokens: int, output_tokens: int, cached: int, written: int, reasoning: int) -> Decimal:
            usage = _usage(input_tokens, output_tokens, cached, written, reasoning)
            total: Decimal = model.calc_price(usage, provider, genai_request_timestamp=when).total_price
            return total

        fixed = charged(0, 0, 0, 0, 0)
        per_input, per_output = charged(MILLION, 0, 0, 0, 0) - fixed, charged(0, MILLION, 0, 0, 0) - fixed
        per_cached = charged(MILLION, 0, MILLION, 0, 0) - fixed - per_input
        per_written = charged(MILLION, 0, 0, MILLION, 0) - fixed - per_input
        per_reasoning = charged(0, MILLION, 0, 0, MILLION) - fixed - per_output
        rates = (fixed, per_input, per_output, per_cached, per_written, per_reasoning)
    _RATES[id(model_price)] = (model_price, rates)
    return rates


def _usage(input_tokens: int, output_tokens: int, cached: int, written: int, reasoning: int) -> Any:
    from genai_prices import Usage

    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached or None,
        cache_write_tokens=written or None,
        output_reasoning_tokens=reasoning or None,
    )
