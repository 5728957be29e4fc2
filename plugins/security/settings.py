"""The security plugin's settings (``PLUGHOST_SECURITY_<FIELD>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from .hosts import DEFAULT_ALLOWED_HOSTS, HostAllowList, OriginPolicy


class Settings(BaseModel):
    allowed_hosts: list[str] = list(DEFAULT_ALLOWED_HOSTS)
    """Host headers served (DNS-rebinding protection): names, ``*.domain``, addresses, networks,
    each with an optional ``:port`` (without one, any port). Replaces the default list."""
    allowed_origins: list[str] = []
    """Origins allowed cross-origin requests, besides loopback ones: ``https://app.example``,
    ``https://*.example.com``, or ``*`` (any origin, without credentials)."""
    frame_options: Literal["DENY", "SAMEORIGIN", ""] = "SAMEORIGIN"
    """``X-Frame-Options`` sent on every response; empty sends none."""
    token: SecretStr | None = None
    """When set, every route but the exempt paths needs ``Authorization: Bearer <token>``, except a
    GET or HEAD of a page without data (console page shells and static files, the API docs pages)."""
    exempt_paths: list[str] = ["/health"]
    """Paths served whatever the Host header and without the token (liveness probes)."""
    auth: Literal["token", "users"] = "token"
    """``token``: no accounts; the server is open (on loopback) or, with ``token`` set, needs that one token.
    ``users``: accounts, API keys and roles per workspace (``python -m core keys add ...`` makes the first)."""
    credential_cache_seconds: float = Field(5.0, ge=0, le=300)
    """How long a process trusts what it read of a key or session before reading it again: a key
    disabled through another process (or the CLI) stops working there within this time."""
    session_hours: float = Field(12.0, gt=0, le=24 * 90)
    """How long a console sign-in lasts."""
    login_attempts: int = Field(5, ge=1)
    """Failed sign-ins allowed per account and client address in ``login_window_seconds``; then 429."""
    login_window_seconds: float = Field(900.0, gt=0)

    @field_validator("allowed_hosts")
    @classmethod
    def _valid_hosts(cls, entries: list[str]) -> list[str]:
        HostAllowList(entries)
        return entries

    @field_validator("allowed_origins")
    @classmethod
    def _valid_origins(cls, entries: list[str]) -> list[str]:
        OriginPolicy(entries)
        return entries

    @field_validator("token")
    @classmethod
    def _non_empty_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 16:
            raise ValueError(
                "the token must be at least 16 characters "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )
        return token

    @model_validator(mode="after")
    def _one_way_in(self) -> Settings:
        if self.auth == "users" and self.token is not None:
            raise ValueError(
                "PLUGHOST_SECURITY_TOKEN and PLUGHOST_SECURITY_AUTH=users exclude each other: with accounts, "
                "make an admin key instead (python -m core keys add NAME --role admin)"
            )
        return self
