"""The accounts API (``/api/security/*``: users and keys, for admins) and the console's sign-in and sign-out
(where the form at ``/login`` posts: ``/api/security/login``, and ``/api/security/logout``)."""

from __future__ import annotations

import functools
import secrets
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from core import run_bulk
from core.access import EVERY_WORKSPACE, Role, current_principal
from core.context import check_workspace

from .accounts import CSRF_COOKIE, SESSION_COOKIE, Accounts
from .credentials import digest, hash_password, new_session_token, password_matches
from .gateway_limits import GatewayLimits
from .management import NewKey, NewUser, add_key, add_user, may_manage
from .settings import Settings
from .store import Kind, NameTaken
from .throttle import LoginThrottle


@functools.cache
def unusable_password_hash() -> str:
    """Checked against when no such user exists, so an unknown name takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def create_router(accounts: Accounts, limits: GatewayLimits, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["security"])
    store = accounts.store
    throttle = LoginThrottle(settings.login_attempts, settings.login_window_seconds)

    @router.get("/api/security/me")
    async def me() -> dict[str, Any]:
        """Who the credentials of this request are, and their role in each workspace."""
        principal = current_principal()
        if principal is None:
            raise HTTPException(401, "not signed in")
        return {"kind": principal.kind, "name": principal.name, "roles": dict(principal.grants)}

    @router.post("/api/security/keys", status_code=201)
    async def create_key(new: NewKey) -> dict[str, Any]:
        """A new API key: the answer holds the key itself, shown this once and never again."""
        if not may_manage(current_principal(), new.roles):
            raise HTTPException(403, _manage_refusal(new.workspace))
        try:
            entry, key = await add_key(store, new)
        except NameTaken as error:
            raise HTTPException(409, str(error)) from None
        return {"key": key, **entry}

    @router.post("/api/security/users", status_code=201)
    async def create_user(new: NewUser) -> dict[str, Any]:
        if not may_manage(current_principal(), new.roles):
            raise HTTPException(403, _manage_refusal(new.workspace))
        try:
            return await add_user(store, new)
        except NameTaken as error:
            raise HTTPException(409, str(error)) from None

    for kind, plural in (("key", "keys"), ("user", "users")):
        _add_management_routes(router, accounts, limits if kind == "key" else None, kind, plural)  # type: ignore[arg-type]

    @router.post("/api/security/login", include_in_schema=False)
    async def login(
        request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")
    ) -> Response:
        """Sign in to the console (a standard form, for password managers): a session cookie, or back to
        the form saying why not."""
        wants_json = "application/json" in request.headers.get("accept", "")
        address = request.client.host if request.client else ""
        wait = throttle.wait(username, address)
        if wait:
            if wants_json:
                detail = {"detail": f"too many failed sign-ins; try again in {wait} seconds"}
                return JSONResponse(detail, 429, headers={"retry-after": str(wait)})
            return _back_to_form("throttled", next, wait)
        credential = await store.user_credential(username)
        stored = credential.secret_hash if credential else await run_bulk(unusable_password_hash)
        matches = await run_bulk(password_matches, password, stored)
        if credential is None or not matches or credential.disabled:
            throttle.failed(username, address)
            if wants_json:
                return JSONResponse({"detail": "wrong username or password"}, 401)
            return _back_to_form("failed", next)
        throttle.succeeded(username, address)
        token, csrf_token = new_session_token(), new_session_token()
        lifetime = settings.session_hours * 3600
        await store.add_session(digest(token), credential.principal.id, csrf_token, lifetime)
        response = RedirectResponse(_local(next), 303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            SESSION_COOKIE, token, max_age=int(lifetime), httponly=True, samesite="lax", secure=secure, path="/"
        )
        response.set_cookie(
            CSRF_COOKIE, csrf_token, max_age=int(lifetime), httponly=False, samesite="strict", secure=secure, path="/"
        )
        return response

    @router.post("/api/security/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        """Sign out: the session ends on the server, and its cookies are cleared."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await store.delete_session(digest(token))
            accounts.forget()
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    return router


def _add_management_routes(
    router: APIRouter, accounts: Accounts, limits: GatewayLimits | None, kind: Kind, plural: str
) -> None:
    """List (keys with their gateway usage), disable, enable and delete one kind of principal."""
    store = accounts.store

    @router.get(f"/api/security/{plural}", name=f"list_{plural}")
    async def listing() -> dict[str, list[dict[str, Any]]]:
        caller = current_principal()
        entries = [entry for entry in await store.listing(kind) if may_manage(caller, entry["roles"])]
        if limits is not None:
            for entry in entries:
                entry["usage"] = await limits.usage(entry["name"], entry["limits"].get("budget_period", "month"))
        return {plural: entries}

    async def managed(name: str) -> dict[str, Any]:
        found = await store.listing(kind, name=name)
        if not found or not may_manage(current_principal(), found[0]["roles"]):
            raise HTTPException(404, f"no {kind} {name!r} you may manage")  # never says whether it exists
        return found[0]

    async def set_disabled(name: str, disabled: bool) -> dict[str, Any]:
        await managed(name)
        await store.set_disabled(kind, name, disabled)
        accounts.forget()
        return (await store.listing(kind, name=name))[0]

    @router.post(f"/api/security/{plural}/{{name}}/disable", name=f"disable_{kind}")
    async def disable(name: str) -> dict[str, Any]:
        return await set_disabled(name, True)

    @router.post(f"/api/security/{plural}/{{name}}/enable", name=f"enable_{kind}")
    async def enable(name: str) -> dict[str, Any]:
        return await set_disabled(name, False)

    @router.put(f"/api/security/{plural}/{{name}}/roles/{{workspace}}", name=f"grant_{kind}")
    async def grant(name: str, workspace: str, granted: GrantedRole) -> dict[str, Any]:
        """Give it ``role`` in ``workspace`` (``*``: every workspace), replacing its role there."""
        return await set_role(name, _grant_workspace(workspace), granted.role)

    @router.delete(f"/api/security/{plural}/{{name}}/roles/{{workspace}}", name=f"revoke_{kind}")
    async def revoke(name: str, workspace: str) -> dict[str, Any]:
        """Take away its role in ``workspace``."""
        return await set_role(name, _grant_workspace(workspace), None)

    async def set_role(name: str, workspace: str, role: Role | None) -> dict[str, Any]:
        await managed(name)
        if not may_manage(current_principal(), {workspace: role or "viewer"}):
            raise HTTPException(403, _manage_refusal(None if workspace == EVERY_WORKSPACE else workspace))
        await store.set_role(kind, name, workspace, role)
        accounts.forget()
        return (await store.listing(kind, name=name))[0]

    @router.delete(f"/api/security/{plural}/{{name}}", status_code=204, name=f"delete_{kind}")
    async def remove(name: str) -> Response:
        await managed(name)
        await store.delete(kind, name)
        accounts.forget()
        if limits is not None:
            await limits.counters.forget(name)
        return Response(status_code=204)


class GrantedRole(BaseModel):
    role: Role


def _grant_workspace(workspace: str) -> str:
    if workspace == EVERY_WORKSPACE:
        return workspace
    try:
        return check_workspace(workspace)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


def _manage_refusal(workspace: str | None) -> str:
    where = f"workspace {workspace!r}" if workspace else "every workspace (a server-wide admin)"
    return f"only an admin of {where} may grant that"


def _local(target: str) -> str:
    """``target`` when it is a path on this server, else ``/`` (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _back_to_form(reason: Literal["failed", "throttled"], next: str, wait: int = 0) -> Response:
    query = f"?{reason}={wait or 1}&next={quote(_local(next), safe='/')}"
    return RedirectResponse(f"/login{query}", 303)
