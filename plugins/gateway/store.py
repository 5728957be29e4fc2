"""Gateway configuration (secrets, models, endpoints) and usage records, scoped by workspace.

A secret's credentials are sealed (see ``crypto``) and never leave the store
except, decrypted, into the provider call; what the API shows of a key is a hint.
Resolving an endpoint for a call reads a per-process cache, refreshed on every
write here and after ``config_cache_seconds`` (for other workers' writes).
Usage records are queued and written in batches by a background task, which prices them
(see ``costs``) in a bulk thread first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import Pricing, TokenPrice, run_bulk
from core.context import current_workspace
from core.database import write_transaction

from .costs import AttemptCost
from .crypto import Envelope, Sealed

logger = logging.getLogger("plughost.gateway")

USAGE_LINGER_SECONDS = 0.5
USAGE_BATCH = 500
REFUSAL_REASONS = ("requests", "tokens", "budget", "endpoint")
"""Why a key's limits refused a call: its calls or tokens per minute, its budget (429s), its endpoints (403)."""

metadata = MetaData()

secrets = Table(
    "plughost_gateway_secrets",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("base_url", Text),
    Column("key_hint", Text, nullable=False),
    Column("header_names", Text, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
models = Table(
    "plughost_gateway_models",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("model", Text, nullable=False),
    Column("secret", String(63), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("input_cost_per_mtok", Float),
    Column("output_cost_per_mtok", Float),
)
endpoints = Table(
    "plughost_gateway_endpoints",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("models", Text, nullable=False),  # JSON: [{"model": name, "weight": n}, ...] in fallback order
    Column("created_at", Float, nullable=False),
)
usage = Table(
    "plughost_gateway_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("endpoint", String(63), nullable=False),
    Column("model", String(63), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("streamed", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("created_at", Float, nullable=False),
    Column("cost_usd", Float),
    Column("key_name", String(200)),  # the plughost API key that made the call (accounts on), else None
    Column("attempt", Integer),  # its place in the call's fallback order: 1 for the first (None before 0003)
)
refusals = Table(
    "plughost_gateway_refusals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("key_name", String(200), nullable=False),
    Column("endpoint", String(63)),
    Column("status", Integer, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
)
"""Calls a key's limits refused before they reached the gateway (told by ``plughost_gateway_key_refused``)."""


class Conflict(ValueError):
    """The name is taken, or the object is still in use (409)."""


class Missing(LookupError):
    """No such object in this workspace (404), or one it refers to is missing (400)."""


class Unreadable(RuntimeError):
    """A stored secret cannot be decrypted with this server's key-encryption key (a server problem, 500)."""


@dataclass(frozen=True)
class Target:
    """One model of an endpoint, ready to call: what the provider needs, decrypted."""

    name: str
    provider: str
    model: str
    base_url: str | None
    api_key: str
    headers: dict[str, str]
    weight: int
    price: TokenPrice | None = None
    """The model's own price, when it has one (a private model)."""


def key_hint(api_key: str) -> str:
    return f"{api_key[:3]}…{api_key[-4:]}" if len(api_key) >= 12 else "…" * 3


class GatewayStore:
    def __init__(self, engine: AsyncEngine, cache_seconds: float, pricing: Pricing | None = None) -> None:
        self.engine = engine
        self.pricing = pricing or Pricing()
        self.envelope: Envelope | None = None
        """Set at start-up (loading the key may create the key file; inspecting the app must not)."""
        self.cache_seconds = cache_seconds
        self._resolved: dict[tuple[str, str], tuple[float, list[Target]]] = {}
        self._usage: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        """Usage records to store; ``None`` asks the writer to stop."""
        self._full_batch = asyncio.Event()

    # -- secrets -----------------------------------------------------------
    async def put_secret(
        self, name: str, api_key: str, base_url: str | None, headers: dict[str, str], *, create: bool
    ) -> dict[str, Any]:
        workspace, now = current_workspace(), time.time()
        assert self.envelope is not None, "the gateway has not started"
        sealed = self.envelope.seal(
            json.dumps({"api_key": api_key, "headers": headers}).encode(), f"{workspace}/{name}"
        )
        values = {
            "base_url": base_url,
            "key_hint": key_hint(api_key),
            "header_names": json.dumps(sorted(headers)),
            "ciphertext": sealed.ciphertext,
            "wrapped_key": sealed.wrapped_key,
            "kek_id": sealed.kek_id,
            "updated_at": now,
        }
        async with self.engine.begin() as connection:
            if create:
                try:
                    await connection.execute(
                        insert(secrets).values(workspace=workspace, name=name, created_at=now, **values)
                    )
                except IntegrityError:
                    raise Conflict(
                        f"a secret named {name!r} exists; PUT /api/gateway/secrets/{name} replaces it"
                    ) from None
            else:
                changed = await connection.execute(
                    update(secrets).where(secrets.c.workspace == workspace, secrets.c.name == name).values(**values)
                )
                if not changed.rowcount:
                    raise Missing(f"no secret {name!r}")
        self._resolved.clear()
        return await self.get_secret(name)

    async def list_secrets(self) -> list[dict[str, Any]]:
        return [_secret_view(row) for row in await self._rows(secrets)]

    async def get_secret(self, name: str) -> dict[str, Any]:
        return _secret_view(await self._row(secrets, name, "secret"))

    async def delete_secret(self, name: str) -> None:
        await self._delete(secrets, name, "secret", used_by=_models_of_secret)

    # -- models --------------------------------------------------------------
    async def create_model(
        self, name: str, provider: str, model: str, secret: str, price: TokenPrice | None = None
    ) -> dict[str, Any]:
        await self._insert(
            models, name, "model", [_existing_secret(secret)], **_model_columns(provider, model, secret, price)
        )
        return await self.get_model(name)

    async def update_model(
        self, name: str, provider: str, model: str, secret: str, price: TokenPrice | None = None
    ) -> dict[str, Any]:
        """Change a model; ``Missing`` for an unknown secret (checked first) or model."""
        await self._update(
            models, name, "model", [_existing_secret(secret)], **_model_columns(provider, model, secret, price)
        )
        return await self.get_model(name)

    async def list_models(self) -> list[dict[str, Any]]:
        return [_model_view(row) for row in await self._rows(models)]

    async def get_model(self, name: str) -> dict[str, Any]:
        return _model_view(await self._row(models, name, "model"))

    async def delete_model(self, name: str) -> None:
        await self._delete(models, name, "model", used_by=_endpoints_of_model)

    # -- endpoints -------------------------------------------------------------
    async def create_endpoint(self, name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        await self._insert(endpoints, name, "endpoint", _existing_models(members), models=json.dumps(members))
        return await self.get_endpoint(name)

    async def update_endpoint(self, name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace an endpoint's models; ``Missing`` for an unknown model (checked first) or endpoint."""
        await self._update(endpoints, name, "endpoint", _existing_models(members), models=json.dumps(members))
        return await self.get_endpoint(name)

    async def list_endpoints(self) -> list[dict[str, Any]]:
        return [_endpoint_view(row) for row in await self._rows(endpoints)]

    async def get_endpoint(self, name: str) -> dict[str, Any]:
        return _endpoint_view(await self._row(endpoints, name, "endpoint"))

    async def delete_endpoint(self, name: str) -> None:
        await self._delete(endpoints, name, "endpoint")

    # -- calls -------------------------------------------------------------------
    async def resolve(self, endpoint: str) -> list[Target]:
        """The endpoint's models in fallback order, decrypted; raises ``Missing`` for an unknown endpoint."""
        key = (current_workspace(), endpoint)
        cached = self._resolved.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        workspace = key[0]
        members = json.loads((await self._row(endpoints, endpoint, "endpoint"))["models"])
        targets = []
        async with self.engine.connect() as connection:
            for member in members:
                model = (
                    await connection.execute(
                        select(models).where(models.c.workspace == workspace, models.c.name == member["model"])
                    )
                ).first()
                secret = (
                    model
                    and (
                        await connection.execute(
                            select(secrets).where(secrets.c.workspace == workspace, secrets.c.name == model.secret)
                        )
                    ).first()
                )
                if model is None or secret is None:
                    raise Missing(f"endpoint {endpoint!r} refers to a model or secret that no longer exists")
                assert self.envelope is not None, "the gateway has not started"
                try:
                    sealed = Sealed(secret.ciphertext, secret.wrapped_key, secret.kek_id)
                    opened = json.loads(self.envelope.open(sealed, f"{workspace}/{secret.name}"))
                except ValueError as error:
                    raise Unreadable(f"secret {secret.name!r}: {error}") from None
                targets.append(
                    Target(
                        model.name,
                        model.provider,
                        model.model,
                        secret.base_url,
                        opened["api_key"],
                        opened["headers"],
                        member["weight"],
                        _price(model),
                    )
                )
        self._resolved[key] = (time.monotonic(), targets)
        return targets

    def record_usage(self, **record: Any) -> None:
        """Queue one call's usage, with what its cost depends on (``cost``, an ``AttemptCost``); the writer
        prices and stores it after the response is on its way."""
        self._usage.put_nowait({"workspace": current_workspace(), "created_at": time.time(), **record})
        if self._usage.qsize() >= USAGE_BATCH:
            self._full_batch.set()

    async def write_usage(self) -> None:
        """Store queued usage records in batches until :meth:`stop_writing_usage`, then store what is left.

        A batch is written ``USAGE_LINGER_SECONDS`` after its first record (or at
        ``USAGE_BATCH`` records), so under load a call costs no database write of its own.
        Stopping never cuts a write short: a cancelled database call would lose its batch.
        """
        while (first := await self._usage.get()) is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full_batch.wait(), USAGE_LINGER_SECONDS)
            if not await self._flush_usage(first):
                return

    def stop_writing_usage(self) -> None:
        """Make :meth:`write_usage` store what is queued now and return."""
        self._usage.put_nowait(None)
        self._full_batch.set()

    async def _flush_usage(self, first: dict[str, Any]) -> bool:
        """Store ``first`` and every record queued after it; whether writing goes on (no stop was queued)."""
        self._full_batch.clear()
        batch = [first]
        going_on = True
        while not self._usage.empty():
            record = self._usage.get_nowait()
            if record is None:
                going_on = False
            else:
                batch.append(record)
        try:
            rows = await run_bulk(self._priced, batch)
            async with self.engine.begin() as connection:
                await connection.execute(insert(usage), rows)
        except Exception:  # usage must never break calls; losing records is logged
            logger.exception("gateway: could not store %d usage records", len(batch))
        return going_on

    def _priced(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The usage rows of queued records, each with its cost (in a bulk thread: pricing is CPU work)."""
        priced = []
        for record in records:
            cost: AttemptCost = record["cost"]
            priced.append(
                {**{key: value for key, value in record.items() if key != "cost"}, "cost_usd": cost.cost(self.pricing)}
            )
        return priced

    async def usage_summary(self, since: float) -> list[dict[str, Any]]:
        """Per endpoint and model since ``since``: calls, errors, p50/p95 latency of the calls that succeeded
        (nearest rank), input and output tokens, spend (``cost_usd``: of the attempts with a price; ``None``
        when none has one). One row per provider attempt, so fallbacks count where they happened."""
        where = (usage.c.workspace == current_workspace(), usage.c.created_at >= since)
        group = (usage.c.endpoint, usage.c.model)
        totals = (
            select(
                *group,
                func.count().label("calls"),
                func.sum(case((usage.c.status != 200, 1), else_=0)).label("errors"),
                func.sum(usage.c.prompt_tokens).label("input_tokens"),
                func.sum(usage.c.completion_tokens).label("output_tokens"),
                func.sum(usage.c.cost_usd).label("cost_usd"),
            )
            .where(*where)
            .group_by(*group)
        )
        ranked = (
            select(
                *group,
                usage.c.latency_ms,
                func.row_number().over(partition_by=group, order_by=usage.c.latency_ms).label("position"),
                func.count().over(partition_by=group).label("total"),
            )
            .where(*where, usage.c.status == 200)
            .subquery()
        )
        percentiles = select(
            ranked.c.endpoint,
            ranked.c.model,
            func.max(case((ranked.c.position == (ranked.c.total + 1) // 2, ranked.c.latency_ms))).label("p50_ms"),
            func.max(case((ranked.c.position == (95 * ranked.c.total + 99) // 100, ranked.c.latency_ms))).label(
                "p95_ms"
            ),
        ).group_by(ranked.c.endpoint, ranked.c.model)
        async with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in await connection.execute(totals.order_by(*group))]
            latency = {(row.endpoint, row.model): row for row in await connection.execute(percentiles)}
        for row in rows:
            found = latency.get((row["endpoint"], row["model"]))
            row["p50_ms"], row["p95_ms"] = (found.p50_ms, found.p95_ms) if found else (None, None)
            row["input_tokens"], row["output_tokens"] = row["input_tokens"] or 0, row["output_tokens"] or 0
        return rows

    async def usage_timeline(self, since: float, until: float, buckets: int) -> list[dict[str, Any]]:
        """The window from ``since`` to ``until`` cut in ``buckets`` equal bins, oldest first: per bin its
        start, attempts, errors, tokens and spend (``cost_usd``, ``None`` when no attempt in it has a price),
        and the spend per endpoint (``endpoints``, those with a price)."""
        width = (until - since) / buckets
        offset = (usage.c.created_at - since) / width
        position = (func.floor(offset) if self.engine.dialect.name == "postgresql" else cast(offset, Integer)).label(
            "position"
        )
        query = (
            select(
                position,
                usage.c.endpoint,
                func.count().label("calls"),
                func.sum(case((usage.c.status != 200, 1), else_=0)).label("errors"),
                func.sum(usage.c.prompt_tokens).label("input_tokens"),
                func.sum(usage.c.completion_tokens).label("output_tokens"),
                func.sum(usage.c.cost_usd).label("cost_usd"),
            )
            .where(usage.c.workspace == current_workspace(), usage.c.created_at >= since, usage.c.created_at < until)
            .group_by(position, usage.c.endpoint)
        )
        bins: list[dict[str, Any]] = [
            {
                "start": since + index * width,
                "calls": 0,
                "errors": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": None,
                "endpoints": {},
            }
            for index in range(buckets)
        ]
        async with self.engine.connect() as connection:
            for row in await connection.execute(query):
                found = bins[min(max(int(row.position), 0), buckets - 1)]
                for key in ("calls", "errors", "input_tokens", "output_tokens"):
                    found[key] += getattr(row, key) or 0
                if row.cost_usd is not None:
                    found["cost_usd"] = (found["cost_usd"] or 0) + row.cost_usd
                    found["endpoints"][row.endpoint] = row.cost_usd
        return bins

    async def usage_by_key(self, since: float) -> list[dict[str, Any]]:
        """Per plughost API key since ``since`` (``key`` ``None``: calls made without one): its calls (first
        attempts), errors (failed attempts), input and output tokens, spend (``cost_usd``, ``None`` when no
        attempt has a price), and the calls its limits refused, by reason (``refused``: ``requests`` and
        ``tokens`` per minute and ``budget`` were 429s, ``endpoint`` a 403)."""
        workspace = current_workspace()
        totals = (
            select(
                usage.c.key_name,
                func.sum(case((usage.c.attempt > 1, 0), else_=1)).label("calls"),
                func.sum(case((usage.c.status != 200, 1), else_=0)).label("errors"),
                func.sum(usage.c.prompt_tokens).label("input_tokens"),
                func.sum(usage.c.completion_tokens).label("output_tokens"),
                func.sum(usage.c.cost_usd).label("cost_usd"),
            )
            .where(usage.c.workspace == workspace, usage.c.created_at >= since)
            .group_by(usage.c.key_name)
        )
        refused = (
            select(refusals.c.key_name, refusals.c.reason, func.count().label("count"))
            .where(refusals.c.workspace == workspace, refusals.c.created_at >= since)
            .group_by(refusals.c.key_name, refusals.c.reason)
        )
        keys: dict[str | None, dict[str, Any]] = {}

        def entry(key: str | None) -> dict[str, Any]:
            return keys.setdefault(
                key,
                {
                    "key": key,
                    "calls": 0,
                    "errors": 0,
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost_usd": None,
                    "refused": dict.fromkeys(REFUSAL_REASONS, 0),
                },
            )

        async with self.engine.connect() as connection:
            for row in await connection.execute(totals):
                found = entry(row.key_name)
                for name in ("calls", "errors", "input_tokens", "output_tokens"):
                    found[name] = int(getattr(row, name) or 0)
                found["cost_usd"] = row.cost_usd
            for row in await connection.execute(refused):
                entry(row.key_name)["refused"][row.reason] = row.count
        return sorted(keys.values(), key=lambda found: (found["key"] is None, found["key"] or ""))

    async def record_refusal(self, workspace: str, key: str, endpoint: str | None, status: int, reason: str) -> None:
        """Store one call a key's limits refused before it reached the gateway."""
        row = {
            "workspace": workspace,
            "key_name": key,
            "endpoint": endpoint,
            "status": status,
            "reason": reason,
            "created_at": time.time(),
        }
        async with self.engine.begin() as connection:
            await connection.execute(insert(refusals).values(**row))

    async def list_usage(self, limit: int, key: str | None = None) -> list[dict[str, Any]]:
        """The latest ``limit`` attempts, newest first; only those of the API key ``key`` when it is given."""
        where = [usage.c.workspace == current_workspace(), *([usage.c.key_name == key] if key is not None else [])]
        query = select(usage).where(*where).order_by(usage.c.id.desc()).limit(limit)
        async with self.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    # -- shared ------------------------------------------------------------------
    async def _rows(self, table: Table) -> list[Any]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(table).where(table.c.workspace == current_workspace()).order_by(table.c.name)
            )
            return [row._mapping for row in rows]

    async def _row(self, table: Table, name: str, kind: str) -> Any:
        async with self.engine.connect() as connection:
            row = await _named(connection, table, name)
        if row is None:
            raise Missing(f"no {kind} {name!r} in workspace {current_workspace()!r}")
        return row

    async def _insert(
        self, table: Table, name: str, kind: str, references: Sequence[Reference] = (), **values: Any
    ) -> None:
        """Insert the row ``name``, in the transaction that finds each of ``references`` (``Missing`` if one is
        not there): none can be deleted between the check and the insert."""
        try:
            async with write_transaction(self.engine) as connection:
                await _check_references(connection, references)
                await connection.execute(
                    insert(table).values(workspace=current_workspace(), name=name, created_at=time.time(), **values)
                )
        except IntegrityError:
            raise Conflict(f"a {kind} named {name!r} exists") from None
        self._resolved.clear()

    async def _update(
        self, table: Table, name: str, kind: str, references: Sequence[Reference] = (), **values: Any
    ) -> None:
        """Update the row ``name``, in the transaction that finds each of ``references``, as :meth:`_insert`."""
        workspace = current_workspace()
        async with write_transaction(self.engine) as connection:
            await _check_references(connection, references)
            changed = await connection.execute(
                update(table).where(table.c.workspace == workspace, table.c.name == name).values(**values)
            )
        if not changed.rowcount:
            raise Missing(f"no {kind} {name!r} in workspace {workspace!r}")
        self._resolved.clear()

    async def _delete(self, table: Table, name: str, kind: str, used_by: UsedBy | None = None) -> None:
        """Delete the row ``name``, in the transaction that finds nothing ``used_by`` names (``Conflict`` if
        something does): nothing can start using it between the check and the delete."""
        workspace = current_workspace()
        async with write_transaction(self.engine) as connection:
            # locked first: a write that references it waits, or has committed and is among its users
            await _named(connection, table, name, lock="update")
            users = None if used_by is None else await used_by(connection, name)
            if users:
                raise Conflict(f"{kind} {name!r} is used by {users}")
            deleted = await connection.execute(
                delete(table).where(table.c.workspace == workspace, table.c.name == name)
            )
        if not deleted.rowcount:
            raise Missing(f"no {kind} {name!r} in workspace {workspace!r}")
        self._resolved.clear()


Reference = tuple[Table, str, str]
"""A row a write needs: (table, name, what ``Missing`` says when it is not in the workspace)."""

Lock = Literal["share", "update"] | None
"""How :func:`_named` locks the row it reads (PostgreSQL)."""

UsedBy = Callable[[AsyncConnection, str], Awaitable[str]]
"""What uses the named row, said for a ``Conflict`` ("models a, b"), or ``""``."""


async def _named(connection: AsyncConnection, table: Table, name: str, lock: Lock = None) -> Any:
    """The row ``name`` of ``table`` in the current workspace, or ``None``; on PostgreSQL locked until the
    transaction ends when ``lock`` says how ("share": against its delete; "update": against any other lock). SQLite
    locks nothing here: a :func:`~core.database.write_transaction` holds the whole database's write lock."""
    query = select(table).where(table.c.workspace == current_workspace(), table.c.name == name)
    if lock == "share":
        query = query.with_for_update(read=True, key_share=True)  # FOR KEY SHARE: an update of it may go on
    elif lock == "update":
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    return None if row is None else row._mapping


async def _check_references(connection: AsyncConnection, references: Sequence[Reference]) -> None:
    """Each referenced row exists, and stays until the transaction ends (``Missing`` otherwise)."""
    for table, name, missing in references:
        if await _named(connection, table, name, lock="share") is None:
            raise Missing(missing)


def _existing_secret(name: str) -> Reference:
    return (secrets, name, f"secret {name!r} does not exist; create it first")


def _existing_models(members: list[dict[str, Any]]) -> list[Reference]:
    return [(models, model, f"model {model!r} does not exist; create it first") for model in _member_models(members)]


def _member_models(members: list[dict[str, Any]]) -> list[str]:
    """The models an endpoint's members name."""
    return [member["model"] for member in members]


async def _models_of_secret(connection: AsyncConnection, name: str) -> str:
    found = await connection.execute(
        select(models.c.name)
        .where(models.c.workspace == current_workspace(), models.c.secret == name)
        .order_by(models.c.name)
    )
    names = [row.name for row in found]
    return f"models {', '.join(names)}" if names else ""


async def _endpoints_of_model(connection: AsyncConnection, name: str) -> str:
    found = await connection.execute(
        select(endpoints.c.name, endpoints.c.models)
        .where(endpoints.c.workspace == current_workspace())
        .order_by(endpoints.c.name)
    )
    names = [row.name for row in found if name in _member_models(json.loads(row.models))]
    return f"endpoints {', '.join(names)}" if names else ""


def _secret_view(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "base_url": row["base_url"],
        "key_hint": row["key_hint"],
        "header_names": json.loads(row["header_names"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _model_view(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "provider": row["provider"],
        "model": row["model"],
        "secret": row["secret"],
        "input_cost_per_mtok": row["input_cost_per_mtok"],
        "output_cost_per_mtok": row["output_cost_per_mtok"],
        "created_at": row["created_at"],
    }


def _model_columns(provider: str, model: str, secret: str, price: TokenPrice | None) -> dict[str, Any]:
    """A model row's columns but its name."""
    return {
        "provider": provider,
        "model": model,
        "secret": secret,
        "input_cost_per_mtok": None if price is None else price.input,
        "output_cost_per_mtok": None if price is None else price.output,
    }


def _price(model: Any) -> TokenPrice | None:
    """A stored model's own price, or ``None`` when it has none."""
    if model.input_cost_per_mtok is None or model.output_cost_per_mtok is None:
        return None
    return TokenPrice(input=model.input_cost_per_mtok, output=model.output_cost_per_mtok)


def _endpoint_view(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "models": json.loads(row["models"]), "created_at": row["created_at"]}
