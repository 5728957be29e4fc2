"""``core.pricing``: genai-prices under the app's own price table; never a guess."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from genai_prices import Usage, calc_price

from core import Pricing, TokenPrice


def genai_price(usage: Usage, model: str, provider: str) -> float:
    return float(calc_price(usage, model, provider_id=provider).total_price)


def test_known_models_cost_what_genai_prices_says_cached_and_reasoning_tokens_apart() -> None:
    pricing = Pricing()
    cached = genai_price(Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=800), "gpt-4o", "openai")
    assert pricing.cost("openai", ["gpt-4o"], 1000, 100, cached_tokens=800) == cached
    assert cached < genai_price(Usage(input_tokens=1000, output_tokens=100), "gpt-4o", "openai")
    reasoning = Usage(input_tokens=1000, output_tokens=500, output_reasoning_tokens=400)
    assert pricing.cost("google", ["gemini-2.5-flash"], 1000, 500, reasoning_tokens=400) == genai_price(
        reasoning, "gemini-2.5-flash", "google"
    )


def test_the_response_model_first_then_the_requested_one() -> None:
    pricing = Pricing()
    answered = genai_price(Usage(input_tokens=10, output_tokens=10), "gpt-4o-mini", "openai")
    assert pricing.cost("openai", ["gpt-4o-mini", "gpt-4o"], 10, 10) == answered
    assert pricing.cost("openai", ["my-deployment", "gpt-4o-mini"], 10, 10) == answered


def test_opentelemetry_provider_names_are_understood() -> None:
    pricing = Pricing()
    for provider in ("gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"):
        assert pricing.cost(provider, ["gemini-2.0-flash"], 1000, 100) == genai_price(
            Usage(input_tokens=1000, output_tokens=100), "gemini-2.0-flash", "google"
        )
    assert pricing.cost("azure.ai.openai", ["gpt-4o"], 1000, 100) is not None


def test_unknown_models_providers_and_calls_without_tokens_have_no_price() -> None:
    pricing = Pricing()
    assert pricing.cost("openai", ["acme-unreleased-9"], 10, 10) is None
    assert pricing.cost("ollama", ["llama3"], 10, 10) is None  # a local server: not some host's price
    assert pricing.cost("openai", [None, ""], 10, 10) is None
    assert pricing.cost("openai", ["gpt-4o"], None, None) is None


def test_the_price_table_prices_private_models_and_overrides_genai_prices() -> None:
    pricing = Pricing(
        {"house-llm": TokenPrice(input=3, output=9, cached_input=0.5), "gpt-4o": TokenPrice(input=1, output=1)}
    )
    assert pricing.cost("acme", ["house-llm"], 1000, 100, cached_tokens=400) == (600 * 3 + 400 * 0.5 + 100 * 9) / 1e6
    assert pricing.cost("openai", ["gpt-4o"], 1_000_000, 0) == 1.0


def test_cached_tokens_reported_beside_the_input_count_on_top_of_it() -> None:
    """Anthropic's API counts cache reads apart from ``input_tokens``: more cached than input means so."""
    pricing = Pricing()
    assert pricing.cost("anthropic", ["claude-3-5-sonnet-latest"], 100, 10, cached_tokens=1000) == genai_price(
        Usage(input_tokens=1100, output_tokens=10, cache_read_tokens=1000), "claude-3-5-sonnet-latest", "anthropic"
    )


def test_cache_writes_cost_their_own_price_within_or_beside_the_input_count() -> None:
    """A prompt-cache write costs more than plain input (Anthropic: 1.25 times); the OpenTelemetry count includes
    it in the input tokens, Anthropic's API reports it beside them."""
    pricing = Pricing()
    model = "claude-3-5-sonnet-latest"
    written = genai_price(
        Usage(input_tokens=3000, output_tokens=10, cache_write_tokens=2000, cache_read_tokens=500), model, "anthropic"
    )
    plain = genai_price(Usage(input_tokens=3000, output_tokens=10, cache_read_tokens=500), model, "anthropic")
    assert written > plain
    assert pricing.cost("anthropic", [model], 3000, 10, cached_tokens=500, cache_write_tokens=2000) == written
    assert pricing.cost("anthropic", [model], 500, 10, cached_tokens=500, cache_write_tokens=2000) == written
    house = Pricing({"house-llm": TokenPrice(input=3, output=9, cached_input=0.5, cache_write_input=4)})
    assert (
        house.cost("acme", ["house-llm"], 1000, 0, cached_tokens=100, cache_write_tokens=300)
        == (600 * 3 + 100 * 0.5 + 300 * 4) / 1e6
    )
    unset = Pricing({"house-llm": TokenPrice(input=3, output=9)})
    assert unset.cost("acme", ["house-llm"], 1000, 0, cache_write_tokens=300) == 1000 * 3 / 1e6


def test_the_price_in_force_when_the_call_was_made() -> None:
    """genai-prices knows when prices changed (claude-sonnet-4-6's, on 2026-03-13)."""
    pricing = Pricing()
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    then = datetime(2026, 1, 1, tzinfo=UTC)
    before = calc_price(usage, "claude-sonnet-4-6", provider_id="anthropic", genai_request_timestamp=then)
    now = calc_price(usage, "claude-sonnet-4-6", provider_id="anthropic")
    assert before.total_price != now.total_price
    at_ns = int(then.timestamp()) * 1_000_000_000
    assert pricing.cost("anthropic", ["claude-sonnet-4-6"], 1_000_000, 100_000, at_ns=at_ns) == float(
        before.total_price
    )
    assert pricing.cost("anthropic", ["claude-sonnet-4-6"], 1_000_000, 100_000) == float(now.total_price)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "o3"),
        ("anthropic", "claude-sonnet-4-5"),  # tiered: more input tokens than its threshold cost more each
        ("google", "gemini-2.5-flash"),
        ("aws", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("mistral", "mistral-large-latest"),
    ],
)
def test_any_usage_costs_to_the_float_what_genai_prices_computes(provider: str, model: str) -> None:
    """Prices that are linear in the tokens are computed from per-million rates: the result is still genai-prices'
    own, to the last bit, whatever the counts; a tiered price is left to genai-prices."""
    pricing = Pricing()
    rng = random.Random(model)
    for input_tokens in (0, 1, 999, 150_000, 250_000, 1_500_000):
        output_tokens = rng.randint(0, 40_000)
        cached, reasoning = rng.randint(0, input_tokens), rng.randint(0, output_tokens)
        written = rng.randint(0, input_tokens - cached)
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cached or None,
            cache_write_tokens=written or None,
            output_reasoning_tokens=reasoning or None,
        )
        expected = float(calc_price(usage, model, provider_id=provider).total_price)
        assert (
            pricing.cost(provider, [model], input_tokens, output_tokens, cached, reasoning, cache_write_tokens=written)
            == expected
        )
