"""Accounts in the shared database: principals (users and API keys), their role per workspace, and console
sessions. Secrets are stored as hashes only (see :mod:`.credentials`). Times are epoch seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.access import Principal, Role
from core.database import write_transaction

Kind = Literal["user", "key"]

metadata = MetaData()

principals = Table(
    "plughost_security_principals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_prefix", String(32), unique=True),
    Column("secret_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("limits", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    UniqueConstraint("kind", "name", name="plughost_security_principal_name"),
)

grants = Table(
    "plughost_security_grants",
    metadata,
    Column("principal_id", Integer, ForeignKey(principals.c.id, ondelete="CASCADE"), primary_key=True),
    Column("workspace", String(63), primary_key=True),
    Column("role", String(8), nullable=False),
)

sessions = Table(
    "plughost_security_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("principal_id", Integer, ForeignKey(principals.c.id, ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("plughost_security_sessions_principal_id", "principal_id"),
)


class NameTaken(Exception):
    pass


@dataclass(frozen=True)
class Credential:
    """What checking a presented secret needs: its stored hash, and who it proves."""

    secret_hash: str
    principal: Principal
    disabled: bool


class AccountStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(
        self,
        kind: Kind,
        name: str,
        secret_hash: str,
        roles: Mapping[str, Role],
        *,
        key_prefix: str | None = None,
        limits: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add a principal with its grants; :class:`NameTaken` when its kind already has one of that name."""
        now = time.time()
        try:
            async with self.engine.begin() as connection:
                inserted = await connection.execute(
                    insert(principals)
                    .returning(principals.c.id)
                    .values(
                        kind=kind,
                        name=name,
                        key_prefix=key_prefix,
                        secret_hash=secret_hash,
                        disabled=False,
                        limits=json.dumps(dict(limits or {})),
                        created_at=now,
                    )
                )
                principal_id = inserted.scalar_one()
                if roles:
                    await connection.execute(
                        insert(grants),
                        [{"principal_id": principal_id, "workspace": w, "role": r} for w, r in roles.items()],
                    )
        except IntegrityError:
            raise NameTaken(f"a {kind} named {name!r} exists") from None
        return (await self.listing(kind, name=name))[0]

    async def listing(self, kind: Kind, *, name: str | None = None) -> list[dict[str, Any]]:
        """Every principal of ``kind`` (or the one named), without any secret or hash."""
        query = select(
            principals.c.id,
            principals.c.name,
            principals.c.key_prefix,
            principals.c.disabled,
            principals.c.limits,
            principals.c.created_at,
            principals.c.last_used_at,
        ).where(principals.c.kind == kind)
        if name is not None:
            query = query.where(principals.c.name == name)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(principals.c.name))).all()
            roles = await _grants_of(connection, [row.id for row in rows])
        listed = []
        for row in rows:
            entry: dict[str, Any] = {
                "name": row.name,
                "roles": roles.get(row.id, {}),
                "disabled": row.disabled,
                "created_at": row.created_at,
                "last_used_at": row.last_used_at,
            }
            if kind == "key":
                entry["prefix"] = row.key_prefix
                entry["limits"] = json.loads(row.limits)
            listed.append(entry)
        return listed

    async def set_disabled(self, kind: Kind, name: str, disabled: bool) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(principals).where(principals.c.kind == kind, principals.c.name == name).values(disabled=disabled)
            )
            if disabled and result.rowcount:
                await connection.execute(delete(sessions).where(sessions.c.principal_id.in_(_id_of(kind, name))))
        return bool(result.rowcount)

    async def set_role(self, kind: Kind, name: str, workspace: str, role: Role | None) -> bool:
        """Grant ``role`` in ``workspace`` (replacing the one there), or take it away (``None``)."""
        async with write_transaction(self.engine) as connection:
            principal_id = (await connection.execute(_id_of(kind, name))).scalar()
            if principal_id is None:
                return False
            await connection.execute(
                delete(grants).where(grants.c.principal_id == principal_id, grants.c.workspace == workspace)
            )
            if role is not None:
                await connection.execute(
                    insert(grants).values(principal_id=principal_id, workspace=workspace, role=role)
                )
        return True

    async def delete(self, kind: Kind, name: str) -> bool:
        async with write_transaction(self.engine) as connection:
            principal_id = (await connection.execute(_id_of(kind, name))).scalar()
            if principal_id is None:
                return False
            for table, column in ((sessions, sessions.c.principal_id), (grants, grants.c.principal_id)):
                await connection.execute(delete(table).where(column == principal_id))
            await connection.execute(delete(principals).where(principals.c.id == principal_id))
        return True

    async def key_credential(self, prefix: str) -> Credential | None:
        return await self._credential(principals.c.key_prefix == prefix, "key")

    async def user_credential(self, name: str) -> Credential | None:
        return await self._credential(and_(principals.c.kind == "user", principals.c.name == name), "user")

    async def _credential(self, condition: Any, kind: Kind) -> Credential | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        principals.c.id,
                        principals.c.name,
                        principals.c.secret_hash,
                        principals.c.disabled,
                        principals.c.limits,
                    ).where(condition)
                )
            ).first()
            if row is None:
                return None
            roles = await _grants_of(connection, [row.id])
        principal = Principal(kind, row.name, row.id, roles.get(row.id, {}), json.loads(row.limits))
        return Credential(row.secret_hash, principal, row.disabled)

    async def record_use(self, last_used: Mapping[int, float]) -> None:
        """Write the last-use times gathered since the previous call, in one statement."""
        if not last_used:
            return
        statement = (
            update(principals)
            .where(principals.c.id == bindparam("principal"))
            .values(last_used_at=bindparam("used"))
            .execution_options(synchronize_session=False)
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement, [{"principal": p, "used": t} for p, t in last_used.items()])

    async def add_session(self, token_hash: str, principal_id: int, csrf_token: str, lifetime: float) -> None:
        now = time.time()
        async with self.engine.begin() as connection:
            await connection.execute(delete(sessions).where(sessions.c.expires_at < now))
            await connection.execute(
                insert(sessions).values(
                    token_hash=token_hash,
                    principal_id=principal_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )

    async def session(self, token_hash: str) -> tuple[Credential, str, float] | None:
        """The session's principal (as a credential whose hash is the session's), CSRF token and expiry."""
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(sessions.c.csrf_token, sessions.c.expires_at, principals.c.name).where(
                        sessions.c.token_hash == token_hash,
                        sessions.c.expires_at > time.time(),
                        principals.c.id == sessions.c.principal_id,
                    )
                )
            ).first()
        if row is None:
            return None
        credential = await self.user_credential(row.name)
        if credential is None:
            return None
        return credential, row.csrf_token, row.expires_at

    async def delete_session(self, token_hash: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(sessions).where(sessions.c.token_hash == token_hash))


def _id_of(kind: Kind, name: str) -> Any:
    return select(principals.c.id).where(principals.c.kind == kind, principals.c.name == name)


async def _grants_of(connection: AsyncConnection, ids: list[int]) -> dict[int, dict[str, Role]]:
    if not ids:
        return {}
    rows = await connection.execute(
        select(grants.c.principal_id, grants.c.workspace, grants.c.role)
        .where(grants.c.principal_id.in_(ids))
        .order_by(grants.c.workspace)
    )
    found: dict[int, dict[str, Role]] = {}
    for principal_id, workspace, role in rows:
        found.setdefault(principal_id, {})[workspace] = role
    return found
