"""What gateway calls cost, on both stores: the openai SDK through the gateway against llmock, each attempt priced
as genai-prices prices it (or at the gateway model's own price), in the usage records, the summary per endpoint and
model, the spend over time, and the call's trace; and a failed attempt's real latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
from genai_prices import Usage, calc_price
from sqlalchemy import insert, select

from core import Pricing
from core.database import create_engine, migrate
from core.testing import serve_in_thread
from plugins.gateway import MIGRATIONS
from plugins.gateway.costs import AttemptCost
from plugins.gateway.providers import Outcome
from plugins.gateway.store import models, usage
from plugins.gateway.tests.kit import API_KEY, KEK, configure
from plugins.gateway.tests.test_tracing import trace, wait_for

MODELS = {  # gateway model: (provider model, own price per million tokens)
    "gpt": ("gpt-4o", None),
    "house": ("house-llm-1", (2.0, 6.0)),
    "mystery": ("acme-unreleased-9", None),
}


@pytest.fixture
def gateway(make_app: Any, llmock: Any, database_url: str) -> Iterator[httpx.Client]:
    settings = {"database_url": database_url, "gateway": {"kek": KEK, "allow_private": True}}
    with serve_in_thread(make_app(["gateway", "otel"], settings)) as url:
        api = httpx.Client(base_url=url)
        api.post(
            "/api/gateway/secrets", json={"name": "llmock", "api_key": API_KEY, "base_url": llmock.base_url("openai")}
        ).raise_for_status()
        for name, (model, price) in MODELS.items():
            prices = {} if price is None else {"input_cost_per_mtok": price[0], "output_cost_per_mtok": price[1]}
            api.post(
                "/api/gateway/models",
                json={"name": name, "provider": "openai", "model": model, "secret": "llmock", **prices},
            ).raise_for_status()
            api.post("/api/gateway/endpoints", json={"name": name, "models": [{"model": name}]}).raise_for_status()
        yield api


def ask(api: httpx.Client, endpoint: str) -> Any:
    client = openai.OpenAI(base_url=str(api.base_url.join("/gateway/v1")), api_key="x", max_retries=0)
    return client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "price this"}])


def test_each_attempt_costs_what_genai_prices_or_its_models_own_price_says(gateway: httpx.Client) -> None:
    answers = {endpoint: ask(gateway, endpoint) for endpoint in ("gpt", "house", "mystery")}
    again = ask(gateway, "gpt")
    usage = answers["gpt"].usage
    assert again.usage == usage  # llmock answers alike: both calls cost the same
    assert usage is not None and usage.prompt_tokens > 0
    known = float(
        calc_price(Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens), "gpt-4o").total_price
    )
    house = answers["house"].usage
    assert house is not None
    own = (house.prompt_tokens * 2.0 + house.completion_tokens * 6.0) / 1_000_000
    wait_for(lambda: len(gateway.get("/api/gateway/usage").json()) == 4)
    records = gateway.get("/api/gateway/usage").json()
    by_model = {record["model"]: record for record in records}
    assert by_model["gpt"]["cost_usd"] == known and by_model["house"]["cost_usd"] == own
    assert by_model["mystery"]["cost_usd"] is None and by_model["mystery"]["prompt_tokens"] > 0  # never a guess

    summary = {row["model"]: row for row in gateway.get("/api/gateway/usage/summary").json()["models"]}
    assert summary["gpt"]["calls"] == 2 and summary["gpt"]["cost_usd"] == pytest.approx(2 * known)
    assert summary["house"]["cost_usd"] == own and summary["mystery"]["cost_usd"] is None

    timeline = gateway.get("/api/gateway/usage/timeline", params={"window_seconds": 600, "buckets": 10}).json()
    assert timeline["bucket_seconds"] == 60 and len(timeline["buckets"]) == 10
    assert sum(bucket["calls"] for bucket in timeline["buckets"]) == 4
    last = timeline["buckets"][-1]  # the minute that ends now: every call was made in it
    assert last["calls"] == 4 and last["errors"] == 0
    assert last["cost_usd"] == pytest.approx(2 * known + own)
    assert last["endpoints"] == {"gpt": pytest.approx(2 * known), "house": own}
    assert all(bucket["cost_usd"] is None for bucket in timeline["buckets"] if not bucket["calls"])

    def costs_in_traces() -> Any:
        listed = gateway.get("/api/otel/traces", params={"service": "plughost-gateway"}).json()["traces"]
        return len(listed) == 4 and sorted((t["cost_usd"] is None, t["cost_usd"] or 0) for t in listed)

    assert wait_for(costs_in_traces) == sorted(
        [(False, known), (False, known), (False, own), (True, 0)]
    )  # the trace list agrees with the usage, the gateway model's own price too


def test_an_anthropic_streams_prompt_cache_writes_cost_more_than_input() -> None:
    """Anthropic's usage counts cache reads and writes beside ``input_tokens`` (``message_start``), the output in
    ``message_delta``; a cache write costs 1.25 times the input price, a read a tenth of it."""
    outcome = Outcome()
    model = "claude-sonnet-4-5-20250929"
    start_usage = {"input_tokens": 10, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 500}
    outcome.note_anthropic({"type": "message_start", "message": {"model": model, "usage": start_usage}})
    outcome.note_anthropic(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 120}}
    )
    assert (outcome.input_tokens, outcome.cached_tokens, outcome.cache_write_tokens) == (2510, 500, 2000)
    at = datetime.now(UTC)
    cost = AttemptCost("anthropic", (outcome.model, "claude-sonnet-4-5"), outcome, None, int(at.timestamp() * 1e9))
    usage = Usage(input_tokens=2510, output_tokens=120, cache_read_tokens=500, cache_write_tokens=2000)
    expected = float(calc_price(usage, model, provider_id="anthropic", genai_request_timestamp=at).total_price)
    plain_usage = Usage(input_tokens=2510, output_tokens=120, cache_read_tokens=500)
    plain = float(calc_price(plain_usage, model, provider_id="anthropic", genai_request_timestamp=at).total_price)
    assert cost.cost(Pricing()) == expected > plain


def test_bad_prices_are_refused_with_the_reason(gateway: httpx.Client) -> None:
    for prices in ({"input_cost_per_mtok": 1.0}, {"input_cost_per_mtok": -1.0, "output_cost_per_mtok": 1.0}):
        answer = gateway.put(
            "/api/gateway/models/gpt", json={"provider": "openai", "model": "gpt-4o", "secret": "llmock", **prices}
        )
        assert answer.status_code == 422, answer.text
        assert "cost_per_mtok" in answer.text
    assert gateway.get("/api/gateway/models/gpt").json()["input_cost_per_mtok"] is None  # nothing changed
    assert gateway.get("/api/gateway/usage/timeline", params={"buckets": 0}).status_code == 422


def test_a_failed_attempt_is_recorded_with_its_real_latency(serve: Any, provider: Any) -> None:
    """The provider fails after 0.3 s: the usage record says so, as its trace does (not 0 ms)."""
    with serve(plugins=("gateway", "otel")) as base:
        configure(
            base,
            provider[0],
            "fragile",
            [("slow-failure", "openai", "fail-slow", 1000), ("echo", "openai", "echo-x", 1)],
        )
        openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0).chat.completions.create(
            model="fragile", messages=[{"role": "user", "content": "hi"}]
        )
        wait_for(lambda: len(httpx.get(f"{base}/api/gateway/usage").json()) == 2)
        [failed] = [record for record in httpx.get(f"{base}/api/gateway/usage").json() if record["status"] != 200]
        [listed] = wait_for(lambda: httpx.get(f"{base}/api/otel/traces").json()["traces"])
        spans = trace(base, listed["trace_id"], 3)["spans"]
    [span] = [span for span in spans if span["name"] == "chat fail-slow"]
    assert 300 <= failed["latency_ms"] <= span["duration_ms"]


def test_upgrading_prices_the_usage_already_recorded(database_url: str) -> None:
    """Usage recorded under 0001 (no cost): 0002 prices each attempt of a model that still exists, at its time."""
    then = time.time() - 3600
    old_models = [
        {"workspace": "default", "name": name, "provider": "openai", "model": model, "secret": "s", "created_at": then}
        for name, model in (("gpt", "gpt-4o"), ("mystery", "acme-unreleased-9"))
    ]
    attempt = {"workspace": "default", "endpoint": "chat", "provider": "openai", "streamed": False, "latency_ms": 5.0}
    old_usage = [
        {**attempt, "model": "gpt", "status": 200, "prompt_tokens": 1000, "completion_tokens": 100, "created_at": then},
        {
            **attempt,
            "model": "gpt",
            "status": 502,
            "prompt_tokens": None,
            "completion_tokens": None,
            "created_at": then,
        },
        {**attempt, "model": "mystery", "status": 200, "prompt_tokens": 10, "completion_tokens": 1, "created_at": then},
        {**attempt, "model": "deleted", "status": 200, "prompt_tokens": 10, "completion_tokens": 1, "created_at": then},
    ]

    async def scenario() -> list[float | None]:
        engine = create_engine(database_url)
        try:
            await migrate(engine, MIGRATIONS, "gateway", revision="0001")
            async with engine.begin() as connection:
                await connection.execute(insert(models), old_models)
                await connection.execute(insert(usage), old_usage)
            await migrate(engine, MIGRATIONS, "gateway")
            async with engine.connect() as connection:
                return [row.cost_usd for row in await connection.execute(select(usage).order_by(usage.c.id))]
        finally:
            await engine.dispose()

    when = datetime.fromtimestamp(then, UTC)
    price = calc_price(
        Usage(input_tokens=1000, output_tokens=100), "gpt-4o", provider_id="openai", genai_request_timestamp=when
    )
    assert asyncio.run(scenario()) == [float(price.total_price), None, None, None]
