"""What a request needs with accounts on: which role its method and path ask for, and which workspace it is
served in. Pure functions of the request head and the principal; nothing here reads the database."""

from __future__ import annotations

from core.access import AccessRefused, Principal, Role, role_allows

READING = frozenset({"GET", "HEAD", "OPTIONS"})
INGEST_PATHS = frozenset({"/v1/traces", "/v1/logs", "/v1/metrics"})
"""OTLP/HTTP: a key of one workspace writes into its own, whatever workspace the exporter names."""
ADMIN_PREFIXES = ("/api/gateway/secrets", "/api/gateway/models", "/api/gateway/endpoints")
"""Provider secrets and gateway settings: changed by a workspace's admins only (secrets also read only by them)."""
ACCOUNTS_PREFIX = "/api/security/"
"""The accounts API, which checks roles itself (a workspace admin manages that workspace's accounts)."""


def required_role(method: str, path: str) -> Role | None:
    """The role a request needs in its workspace; ``None`` when any signed-in principal may make it."""
    if path.startswith(ACCOUNTS_PREFIX):
        return None
    if path.startswith(ADMIN_PREFIXES) and (method not in READING or path.startswith(ADMIN_PREFIXES[0])):
        return "admin"
    return "viewer" if method in READING else "editor"


def served_workspace(principal: Principal, method: str, path: str, requested: str | None, default: str) -> str:
    """The workspace the request is served in, checked against the principal's role there.

    A principal of one workspace is served in its own: when the request names no workspace, and for
    OTLP ingest whatever it names; any other request naming another workspace is refused (403), so a
    key of team-a neither reads nor writes team-b.
    """
    bound = principal.bound_workspace
    workspace = requested or bound or default
    if bound is not None and workspace != bound:
        if path in INGEST_PATHS and method == "POST":
            workspace = bound
        else:
            raise AccessRefused(403, f"{principal.kind} {principal.name!r} belongs to workspace {bound!r} only")
    needed = required_role(method, path)
    role = principal.role_in(workspace)
    if needed is None:
        return workspace
    if not role_allows(role, needed):
        held = f"is {role}" if role else "has no role"
        who = f"{principal.kind} {principal.name!r}"
        raise AccessRefused(403, f"{who} {held} in workspace {workspace!r}; {method} {path} needs {needed}")
    return workspace
