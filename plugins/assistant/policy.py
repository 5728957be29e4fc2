"""Who may call the assistant: this machine only, unless remote access is explicitly allowed.

A request is local when its peer address is loopback and it carries no
forwarding header (a proxy on this machine would otherwise make every client
look local). Each route declares its policy; a route without one is refused at
start-up, so a new route cannot be exposed by accident.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.routing import APIRoute

POLICY = "x-plughost-remote-access"
FORWARDING = frozenset({b"forwarded", b"x-real-ip", b"via"})

Policy = Literal["local-only", "remote-with-token"]


def is_local(request: Request) -> bool:
    client = request.scope.get("client")
    try:
        loopback = client is not None and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        loopback = False
    forwarded = any(
        name in FORWARDING or name.startswith(b"x-forwarded-") for name, _ in request.scope.get("headers", [])
    )
    return loopback and not forwarded


def access(policy: Policy, *, remote_allowed: bool) -> dict[str, Any]:
    """Route keyword arguments: the policy (shown in the OpenAPI) and the dependency that enforces it."""

    async def enforce(request: Request) -> None:
        if is_local(request) or (policy == "remote-with-token" and remote_allowed):
            return
        raise HTTPException(
            403,
            "the assistant answers only on this machine (a loopback client, no Forwarded/X-Forwarded-*/X-Real-IP/Via "
            "headers); to serve remote clients set PLUGHOST_ASSISTANT_ALLOW_REMOTE=1 "
            "together with PLUGHOST_SECURITY_TOKEN or accounts (PLUGHOST_SECURITY_AUTH=users)",
        )

    return {"openapi_extra": {POLICY: policy}, "dependencies": [Depends(enforce)]}


def undeclared(router: APIRouter) -> list[str]:
    """Routes of ``router`` that declare no remote-access policy."""
    return [
        f"{sorted(route.methods or [])} {route.path}"
        for route in router.routes
        if isinstance(route, APIRoute)
        and (route.openapi_extra or {}).get(POLICY) not in ("local-only", "remote-with-token")
    ]
