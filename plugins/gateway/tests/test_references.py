"""A model needs its secret, an endpoint its models: a write that checks one and a delete of it, racing, leave
either both or neither (the check and the write are one transaction that holds the write lock)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from core.database import create_engine, migrate
from plugins.gateway import MIGRATIONS
from plugins.gateway import store as store_module
from plugins.gateway.crypto import Envelope
from plugins.gateway.store import Conflict, GatewayStore

MEMBERS = [{"model": "gpt"}]


async def racing(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    write: Callable[[GatewayStore], Awaitable[Any]],
    delete: Callable[[GatewayStore], Awaitable[Any]],
) -> GatewayStore:
    """``write`` checks what it needs, then, while it waits a moment before writing, ``delete`` tries to delete
    that; returns the store with both done (a refused one raised ``Conflict``)."""
    engine = create_engine(database_url)
    await migrate(engine, MIGRATIONS, "gateway")
    store = GatewayStore(engine, cache_seconds=0.0)
    store.envelope = Envelope(os.urandom(32))
    for secret in ("key", "spare"):  # "spare" is used by nothing yet
        await store.put_secret(secret, "sk-anything", "https://api.example.com/v1", {}, create=True)
    await store.create_model("gpt", "openai", "gpt-4o-mini", "key")  # used by nothing yet
    checked = asyncio.Event()
    check_references = store_module._check_references

    async def checked_then_waits(*args: Any) -> None:
        await check_references(*args)
        checked.set()
        await asyncio.sleep(0.3)  # the delete tries meanwhile

    monkeypatch.setattr(store_module, "_check_references", checked_then_waits)

    async def delete_once_checked() -> None:
        await checked.wait()
        monkeypatch.setattr(store_module, "_check_references", check_references)
        with pytest.raises(Conflict):
            await delete(store)

    await asyncio.gather(write(store), delete_once_checked())
    return store


RACES = {
    "a model made with a secret": (
        lambda store: store.create_model("mini", "openai", "gpt-4o-mini", "spare"),
        lambda store: store.delete_secret("spare"),
    ),
    "a model moved to a secret": (
        lambda store: store.update_model("gpt", "openai", "gpt-4o-mini", "spare"),
        lambda store: store.delete_secret("spare"),
    ),
    "an endpoint made with a model": (
        lambda store: store.create_endpoint("chat", MEMBERS),
        lambda store: store.delete_model("gpt"),
    ),
}
"""A write that references a row, and the delete of that row that races it."""


@pytest.mark.parametrize("race", RACES.values(), ids=RACES.keys())
def test_a_row_deleted_while_a_write_references_it_stays_with_the_write(
    database_url: str, monkeypatch: pytest.MonkeyPatch, race: tuple[Any, Any]
) -> None:
    write, delete = race

    async def scenario() -> None:
        store = await racing(database_url, monkeypatch, write, delete)
        secrets = {secret["name"] for secret in await store.list_secrets()}
        models = {model["name"]: model for model in await store.list_models()}
        endpoints = await store.list_endpoints()
        assert {model["secret"] for model in models.values()} <= secrets  # no model without its secret
        assert {member["model"] for endpoint in endpoints for member in endpoint["models"]} <= set(models)
        assert secrets == {"key", "spare"} and "gpt" in models  # the delete was refused (the write raised nothing)
        await store.engine.dispose()

    asyncio.run(scenario())
