"""What a provider attempt cost: priced off the call's path, for its usage record and its trace alike.

An attempt's cost is ``core.pricing``'s (the price the gateway model carries first, then
``PLUGHOST_PRICES``, then genai-prices) for its provider, the model that answered (else the one
asked for) and its tokens. The same cost counts against a key's budget (it is reported to
``core.metering``). Pricing loads the price data on first use and takes about 0.1 ms a
call, so the usage writer and the trace exporter price their batches in a bulk thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import Pricing, TokenPrice

if TYPE_CHECKING:  # providers reads the store, which reads this module
    from .providers import Outcome


@dataclass(frozen=True)
class AttemptCost:
    """What one provider attempt's price depends on."""

    provider: str
    models: tuple[str | None, ...]
    """The model that answered, then the provider model asked for."""
    outcome: Outcome
    price: TokenPrice | None
    """The gateway model's own price (``input_cost_per_mtok``, ``output_cost_per_mtok``), if it has one."""
    at_ns: int

    @property
    def tokens(self) -> int:
        return (self.outcome.input_tokens or 0) + (self.outcome.output_tokens or 0)

    def cost(self, pricing: Pricing) -> float | None:
        outcome = self.outcome
        return pricing.cost(
            self.provider,
            self.models,
            outcome.input_tokens,
            outcome.output_tokens,
            outcome.cached_tokens,
            outcome.reasoning_tokens,
            at_ns=self.at_ns,
            price=self.price,
            cache_write_tokens=outcome.cache_write_tokens,
        )
