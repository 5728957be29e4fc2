"""Usage aggregates per endpoint and model over a time window, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
from sqlalchemy import insert

from core.database import create_engine, migrate
from core.testing import serve_in_thread
from plugins.gateway import MIGRATIONS
from plugins.gateway.costs import AttemptCost
from plugins.gateway.providers import Outcome
from plugins.gateway.store import GatewayStore, usage
from plugins.gateway.tests.kit import KEK, configure
from plugins.gateway.tests.test_tracing import wait_for


def test_usage_summary_per_endpoint_and_model(make_app: Any, provider: Any, database_url: str) -> None:
    app = make_app(["gateway"], {"database_url": database_url, "gateway": {"allow_private": True, "kek": KEK}})
    with serve_in_thread(app) as base:
        configure(base, provider[0], "chat", [("gpt", "openai", "echo-gpt", 1)])
        configure(base, provider[0], "broken", [("broken", "openai", "fail-500", 1)])
        client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="x", max_retries=0)
        for text in ("a", "a b", "a b c", "a b c d"):
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": text}])
        assert (
            httpx.post(
                f"{base}/gateway/broken/invocations", json={"messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 502
        )
        wait_for(lambda: len(httpx.get(f"{base}/api/gateway/usage").json()) == 5)
        summary = httpx.get(f"{base}/api/gateway/usage/summary", params={"window_seconds": 600}).json()
        latencies = sorted(
            r["latency_ms"] for r in httpx.get(f"{base}/api/gateway/usage").json() if r["model"] == "gpt"
        )
        assert httpx.get(f"{base}/api/gateway/usage/summary", params={"window_seconds": -1}).status_code in (400, 422)
    broken, chat = summary["models"]
    assert broken == {
        "endpoint": "broken",
        "model": "broken",
        "calls": 1,
        "errors": 1,
        "input_tokens": 0,
        "output_tokens": 0,
        "p50_ms": None,
        "p95_ms": None,
        "cost_usd": None,
    }
    assert {k: chat[k] for k in ("endpoint", "model", "calls", "errors", "input_tokens", "output_tokens")} == {
        "endpoint": "chat",
        "model": "gpt",
        "calls": 4,
        "errors": 0,
        "input_tokens": 20,
        "output_tokens": 2 + 3 + 4 + 5,
    }
    assert (chat["p50_ms"], chat["p95_ms"]) == (latencies[1], latencies[3])  # nearest rank of 4 values


def test_stopping_the_writer_stores_every_queued_record(database_url: str) -> None:
    """Shutdown asks the usage writer to stop instead of cancelling it: a cancelled insert would lose its batch."""

    async def scenario() -> int:
        engine = create_engine(database_url)
        try:
            await migrate(engine, MIGRATIONS, "gateway")
            store = GatewayStore(engine, cache_seconds=1.0)
            writer = asyncio.create_task(store.write_usage())

            def call(n: int) -> None:
                store.record_usage(
                    endpoint="chat",
                    model="gpt",
                    provider="openai",
                    status=200,
                    streamed=False,
                    latency_ms=float(n),
                    prompt_tokens=n,
                    completion_tokens=n,
                    cost=AttemptCost("openai", ("gpt-4o",), Outcome(input_tokens=n, output_tokens=n), None, 0),
                )

            call(1)
            call(2)
            store.stop_writing_usage()  # while the first record lingers
            call(3)  # queued behind the stop: still stored
            await writer
            return len(await store.list_usage(100))
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == 3


def test_usage_per_key_counts_calls_once_and_refusals_and_0003_keeps_earlier_records(database_url: str) -> None:
    """Migrating a 0002 database: its attempts stay, made without a key, each a call; then attempts of keys
    (a fallback counted once as a call) and their refused calls, per key."""
    earlier = {"workspace": "default", "endpoint": "chat", "provider": "openai", "streamed": False}
    rows = [
        {**earlier, "model": "gpt", "status": 200, "latency_ms": 5.0, "prompt_tokens": 3, "completion_tokens": 2},
        {**earlier, "model": "gpt", "status": 502, "latency_ms": 1.0, "prompt_tokens": None, "completion_tokens": None},
    ]

    def attempt(n: int, status: int, attempt: int, tokens: int | None) -> dict[str, Any]:
        outcome = Outcome(input_tokens=tokens, output_tokens=tokens)
        return {
            "endpoint": "chat",
            "model": "gpt",
            "provider": "openai",
            "status": status,
            "streamed": False,
            "latency_ms": float(n),
            "prompt_tokens": tokens,
            "completion_tokens": tokens,
            "cost": AttemptCost("openai", ("gpt-4o",), outcome, None, 0),
            "key_name": "etl",
            "attempt": attempt,
        }

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        engine = create_engine(database_url)
        try:
            await migrate(engine, MIGRATIONS, "gateway", revision="0002")
            async with engine.begin() as connection:
                await connection.execute(insert(usage), [{**row, "created_at": time.time()} for row in rows])
            await migrate(engine, MIGRATIONS, "gateway")
            store = GatewayStore(engine, cache_seconds=1.0)
            writer = asyncio.create_task(store.write_usage())
            for record in (attempt(1, 502, 1, None), attempt(2, 200, 2, 10), attempt(3, 200, 1, 20)):
                store.record_usage(**record)
            store.stop_writing_usage()
            await writer
            for reason in ("requests", "requests", "budget"):
                await store.record_refusal("default", "etl", None, 429, reason)
            await store.record_refusal("other", "etl", "chat", 403, "endpoint")  # another workspace's
            return await store.usage_by_key(0), await store.list_usage(10, "etl")
        finally:
            await engine.dispose()

    by_key, of_etl = asyncio.run(scenario())
    etl, keyless = by_key
    assert keyless == {
        "key": None,
        "calls": 2,
        "errors": 1,
        "input_tokens": 3,
        "output_tokens": 2,
        "cost_usd": None,  # recorded without a price
        "refused": {"requests": 0, "tokens": 0, "budget": 0, "endpoint": 0},
    }
    assert {name: etl[name] for name in ("key", "calls", "errors", "input_tokens", "output_tokens", "refused")} == {
        "key": "etl",
        "calls": 2,  # the fallback's second attempt is not a call of its own
        "errors": 1,
        "input_tokens": 30,
        "output_tokens": 30,
        "refused": {"requests": 2, "tokens": 0, "budget": 1, "endpoint": 0},
    }
    assert etl["cost_usd"] > 0
    assert [(row["attempt"], row["key_name"]) for row in of_etl] == [(1, "etl"), (2, "etl"), (1, "etl")]
