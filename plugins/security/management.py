"""Adding users and keys, the same way from the CLI and the API: names and limits checked, secrets hashed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core import run_bulk
from core.access import EVERY_WORKSPACE, Principal, Role
from core.context import check_workspace

from .credentials import hash_password, new_key
from .store import AccountStore

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$"
MIN_PASSWORD_LENGTH = 8


class KeyLimits(BaseModel):
    """What a key may spend through the gateway; each limit is off when not set."""

    rpm: int | None = Field(None, ge=1, description="Gateway calls per minute.")
    tpm: int | None = Field(None, ge=1, description="Gateway tokens (input and output) per minute.")
    budget_usd: float | None = Field(None, gt=0, description="Gateway spend per budget period, in US dollars.")
    budget_period: Literal["day", "week", "month"] = "month"
    endpoints: list[str] | None = Field(None, description="Gateway endpoints (or models) the key may call.")


class Grant(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="Letters, digits and . _ @ + -, up to 200 characters.")
    role: Role
    workspace: str | None = Field(None, description="The one workspace of the grant; every workspace when omitted.")

    @field_validator("workspace")
    @classmethod
    def _valid_workspace(cls, workspace: str | None) -> str | None:
        return workspace if workspace is None else check_workspace(workspace)

    @property
    def roles(self) -> dict[str, Role]:
        return {self.workspace or EVERY_WORKSPACE: self.role}


class NewKey(Grant):
    limits: KeyLimits = KeyLimits()


class NewUser(Grant):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, repr=False)


async def add_key(store: AccountStore, new: NewKey) -> tuple[dict[str, Any], str]:
    """Store a new key; returns its listing and the key itself (to show once)."""
    made = new_key()
    limits = new.limits.model_dump(exclude_none=True, exclude_defaults=True)
    if new.limits.budget_usd is not None:
        limits["budget_period"] = new.limits.budget_period
    entry = await store.add("key", new.name, made.digest, new.roles, key_prefix=made.prefix, limits=limits)
    return entry, made.key


async def add_user(store: AccountStore, new: NewUser) -> dict[str, Any]:
    password_hash = await run_bulk(hash_password, new.password)
    return await store.add("user", new.name, password_hash, new.roles)


def may_manage(caller: Principal | None, roles: dict[str, Role]) -> bool:
    """Whether ``caller`` may add, see, disable or delete a principal with ``roles``: a server admin may
    any; a workspace's admin those whose every grant is in a workspace it administers."""
    if caller is None:
        return False
    if caller.server_admin:
        return True
    return bool(roles) and all(w != EVERY_WORKSPACE and caller.role_in(w) == "admin" for w in roles)
