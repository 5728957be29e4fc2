"""Who is calling, and what they may do: the public contract between the plugin that authenticates
requests (security) and the plugins that serve them.

- A :class:`Principal` is a user or an API key with a role per workspace. The authenticating
  middleware sets it for the request (:class:`use_principal`); any plugin reads it with
  :func:`current_principal` (``None`` when accounts are off).
- Roles are ordered: ``viewer`` reads, ``editor`` also writes (ingest, jobs, gateway calls),
  ``admin`` also manages users, keys, provider secrets and settings. A role granted for the
  workspace ``*`` holds in every workspace; ``admin`` there is the server-wide admin.
- :data:`IngestAuthorizer` is what a receiver outside the HTTP stack (OTLP/gRPC) asks before it
  stores, through the ``plughost_ingest_authorizer`` hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .host import Host

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
"""From least to most allowed."""
EVERY_WORKSPACE = "*"
"""The workspace of a grant that holds in every workspace."""


def role_allows(role: str | None, needed: Role) -> bool:
    """Whether ``role`` includes what ``needed`` may do."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Principal:
    """A user or an API key, as the request's credentials proved it."""

    kind: Literal["user", "key"]
    name: str
    id: int
    grants: Mapping[str, Role]
    """Workspace (or ``*``) -> role."""
    limits: Mapping[str, Any] = field(default_factory=dict)
    """A key's gateway limits (``rpm``, ``tpm``, ``budget_usd``, ``budget_period``, ``endpoints``)."""

    def role_in(self, workspace: str) -> Role | None:
        """The role this principal has in ``workspace``: its grant there, or its grant for every workspace."""
        granted = [self.grants.get(workspace), self.grants.get(EVERY_WORKSPACE)]
        held = [role for role in granted if role is not None]
        return max(held, key=ROLES.index) if held else None

    @property
    def server_admin(self) -> bool:
        return self.grants.get(EVERY_WORKSPACE) == "admin"

    @property
    def bound_workspace(self) -> str | None:
        """The one workspace this principal belongs to, when it has no grant anywhere else."""
        if len(self.grants) == 1 and EVERY_WORKSPACE not in self.grants:
            return next(iter(self.grants))
        return None


class AccessRefused(Exception):
    """Credentials missing or wrong (``status`` 401), or not allowed this (403); ``detail`` says which."""

    def __init__(self, status: Literal[401, 403], detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


IngestAuthorizer = Callable[[Mapping[str, str], str], Awaitable[str]]
"""``await authorize(metadata, workspace)``: given the request's metadata (lower-case keys: ``authorization``,
``x-api-key``...) and the workspace it names, return the workspace to store into (a credential of one
workspace stores into its own), or raise :class:`AccessRefused`."""


_principal: ContextVar[Principal | None] = ContextVar("plughost_principal", default=None)


def authentication(host: Host) -> str | None:
    """How the server authenticates requests (see ``plughost_authentication``); ``None``: it does not."""
    answers = [method for _, method in host.plugins.call("plughost_authentication", host=host)]
    return answers[0] if answers else None


def current_principal() -> Principal | None:
    """The principal of the request being served; ``None`` without accounts (or outside a request)."""
    return _principal.get()


class use_principal:
    """Make ``principal`` the current one inside the ``with`` block (set by the authenticating middleware)."""

    __slots__ = ("_token", "principal")

    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    def __enter__(self) -> Principal | None:
        self._token = _principal.set(self.principal)
        return self.principal

    def __exit__(self, *exc_info: object) -> None:
        _principal.reset(self._token)
