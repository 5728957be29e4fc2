"""The security middleware: Host allow-list, cross-origin write protection, CORS, token or accounts, headers.

Pure ASGI: it reads the request head and edits the response head only, so
streamed bodies pass through untouched. Its own refusals carry the same
security headers as every other response.

The token is not asked of a GET or HEAD of a page shell (``page_shell``, the
host's :meth:`core.Host.is_page_shell`): the console's pages and static files
hold no data, and a browser must load them before it can ask for the token.
Every other check still applies to them.

With accounts on (``PLUGHOST_SECURITY_AUTH=users``) the token's place is taken by a principal: an API
key, or the console's session cookie (whose state-changing requests must also carry the session's CSRF
token in ``X-CSRF-Token``). The principal's role in the request's workspace is checked
(:mod:`.access`); the principal is then the request's (``core.access.current_principal``), and a
principal of one workspace has it bound (``core.context.bind_workspace``). A browser that asks for a
page without a session is sent to ``/login``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.access import AccessRefused, Principal, use_principal
from core.context import DEFAULT_WORKSPACE, WORKSPACE_HEADER, bind_workspace, check_workspace
from core.unavailable import RETRY_AFTER_SECONDS

from .access import served_workspace
from .accounts import CSRF_HEADER, SESSION_COOKIE, Accounts, Session
from .answers import error_body
from .counters import outage
from .credentials import token_matches
from .gateway_limits import GatewayLimits
from .hosts import HostAllowList, OriginPolicy, same_origin
from .settings import Settings

logger = logging.getLogger("plughost.security")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READING = frozenset({"GET", "HEAD"})
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_MAX_AGE = "600"
HOST_VERDICTS_KEPT = 1024
LOGIN_PATH = "/login"
SIGN_IN_PATHS = frozenset({LOGIN_PATH, "/api/security/login", "/api/security/logout"})
"""Served without a principal: the form (a page shell), where it posts, and signing out. The POSTs are still
same-origin only (the cross-origin check above), and the session cookie is SameSite."""
READ_HEADERS = frozenset(
    {
        b"host",
        b"accept",
        b"cookie",
        CSRF_HEADER.encode(),
        WORKSPACE_HEADER.encode(),
        b"origin",
        b"authorization",
        b"x-api-key",
        b"sec-fetch-site",
        b"access-control-request-method",
        b"access-control-request-headers",
        b"sec-fetch-mode",
    }
)
TOKEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Token required · plughost</title><link rel="stylesheet" href="/static/console/console.css"></head>
<body><header class="topbar"><a class="brand" href="/">plughost</a><nav class="nav" aria-label="Console pages">
<a href="/">Home</a><a href="/docs">API docs</a></nav></header>
<main class="content"><section class="not-found" id="token-required"><h1>Token required</h1>
<p>This server asks for its access token (<code>PLUGHOST_SECURITY_TOKEN</code>), and a browser cannot send it
when it opens an address directly, so this address answers only with the token.</p>
<p>Open the console from its <a href="/">home page</a>: it asks for the token once and keeps it for the tab.
API clients send it as <code>Authorization: Bearer &lt;token&gt;</code> (or <code>x-api-key</code>).</p>
<p><a href="/">&larr; Console home</a></p></section></main></body></html>
"""
"""What a browser that navigates to a guarded address gets with the 401, instead of JSON: the console's
look (its stylesheet is a page shell) and how to give the token."""


Refusal = tuple[int, str, list[tuple[bytes, bytes]]]


class SecurityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        *,
        page_shell: Callable[[str], bool] | None = None,
        accounts: Accounts | None = None,
        limits: GatewayLimits | None = None,
        workspaces: bool = True,
    ) -> None:
        self.app = app
        self.page_shell = page_shell
        self.accounts = accounts
        """With accounts on: where principals are checked (else ``None``)."""
        self.limits = limits
        """With accounts on: the gateway limits of keys."""
        self.workspaces = workspaces
        """Whether the workspace header is read (the workspace plugin is enabled)."""
        self.hosts = HostAllowList(settings.allowed_hosts)
        self.host_verdicts: dict[str, bool] = {}  # Host header -> allowed; a server sees few distinct ones
        self.origins = OriginPolicy(settings.allowed_origins)
        self.token = settings.token.get_secret_value().encode() if settings.token else None
        self.exempt = frozenset(settings.exempt_paths)
        self.extra_headers = [(b"x-content-type-options", b"nosniff")]
        if settings.frame_options:
            self.extra_headers.append((b"x-frame-options", settings.frame_options.encode()))
        self.extra_names = frozenset(name for name, _ in self.extra_headers)
        if "*" in settings.allowed_hosts:
            logger.warning(
                "security: every Host header is allowed (PLUGHOST_SECURITY_ALLOWED_HOSTS=*): "
                "no DNS-rebinding protection"
            )
        if self.origins.any:
            logger.warning(
                "security: every origin is allowed (PLUGHOST_SECURITY_ALLOWED_ORIGINS=*), without credentials"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _request_headers(scope)
        origin = headers.get("origin")
        host = headers.get("host", "")
        cross_origin = origin is not None and not same_origin(origin, _http_scheme(scope), host)
        send = self._with_headers(send, origin if cross_origin and origin and self.origins.allows(origin) else None)

        refusal = self._refusal(scope, headers, host, origin, cross_origin)
        client_format = ""
        if refusal is None and self.accounts is not None:
            refusal = await self._serve_with_accounts(scope, headers, receive, send)
            if refusal is None:
                return
            client_format = scope["path"]  # a refusal of credentials, in the format the client reads
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1][:120]})
        else:
            status, detail, extra = refusal
            if status == 401 and self.accounts is None and _navigation(scope, headers):
                detail, extra = TOKEN_PAGE, [*extra, (b"content-type", b"text/html; charset=utf-8")]
            await _respond(send, status, detail, extra, client_format)

    def _refusal(
        self, scope: Scope, headers: dict[str, str], host: str, origin: str | None, cross_origin: bool
    ) -> Refusal | None:
        """Why the request is refused, as (status, detail, extra headers), or None to let it through."""
        path = scope["path"]
        if path in self.exempt:
            return None
        if not self._host_allowed(host):
            return (
                403,
                (
                    f"Host {host or '(missing)'!r} is not allowed. If this server is meant to answer to it, "
                    f"add it to PLUGHOST_SECURITY_ALLOWED_HOSTS."
                ),
                [(b"content-type", b"text/plain; charset=utf-8")],
            )
        method = scope.get("method", "GET")
        if method == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            return self._preflight(origin, cross_origin, headers)
        if (
            cross_origin
            and (method in STATE_CHANGING or scope["type"] == "websocket")
            and not self.origins.allows(origin or "")
        ):
            return (
                403,
                (
                    f"cross-origin {method if scope['type'] == 'http' else 'websocket'} from {origin!r} refused; "
                    "allow the origin with PLUGHOST_SECURITY_ALLOWED_ORIGINS"
                ),
                [],
            )
        if headers.get("sec-fetch-site") == "cross-site" and origin is None and method in STATE_CHANGING:
            return 403, "cross-site request without an Origin refused", []
        if self.token is not None and not token_matches(headers, self.token) and not self._page_shell(scope):
            return (
                401,
                "missing or wrong bearer token (PLUGHOST_SECURITY_TOKEN)",
                [(b"www-authenticate", b'Bearer realm="plughost"')],
            )
        return None

    async def _principal(self, scope: Scope, headers: dict[str, str]) -> Principal:
        """Who makes the request: an API key's principal, else the session cookie's.
        :class:`AccessRefused`: 401 for neither, 403 for a session's write without its CSRF token."""
        assert self.accounts is not None
        if "authorization" in headers or "x-api-key" in headers:
            return await self.accounts.key_principal(headers)
        session = await self._session(headers)
        if session is None:
            raise AccessRefused(401, "sign in at /login, or send an API key as 'Authorization: Bearer <key>'")
        if scope.get("method") in STATE_CHANGING and not hmac.compare_digest(
            headers.get(CSRF_HEADER, "").encode(), session.csrf_token.encode()
        ):
            raise AccessRefused(403, f"missing or wrong CSRF token (header {CSRF_HEADER}, from cookie plughost_csrf)")
        return session.principal

    async def _session(self, headers: dict[str, str]) -> Session | None:
        assert self.accounts is not None
        token = _cookie(headers, SESSION_COOKIE)
        return None if token is None else await self.accounts.session(token)

    def _open(self, scope: Scope) -> bool:
        """Whether the path is served to anyone: exempt paths, the sign-in form, page shells (no data)."""
        path = scope["path"]
        return path in self.exempt or path in SIGN_IN_PATHS or self._page_shell(scope)

    async def _serve_with_accounts(
        self, scope: Scope, headers: dict[str, str], receive: Receive, send: Send
    ) -> Refusal | None:
        """Serve the request as its principal's, in the workspace it may use; or say why not (503 when the
        accounts' database, or the key limits' Redis, cannot serve: nothing is let through unchecked)."""
        if self._open(scope):
            try:
                session = await self._session(headers)
            except Exception as error:
                return _outage(error)
            path = scope["path"]
            if session is None and path not in SIGN_IN_PATHS and self._page_shell(scope) and _wants_html(headers):
                return 303, "", [(b"location", f"{LOGIN_PATH}?next={quote(_target(scope), safe='/')}".encode())]
            with use_principal(session.principal if session else None):  # for pages that adapt to the role
                await self.app(scope, receive, send)
            return None
        try:
            principal = await self._principal(scope, headers)
            workspace = self._workspace(principal, scope, headers)
        except AccessRefused as error:
            if error.status == 403:
                return 403, error.detail, []
            return (
                401,
                error.detail,
                [(b"www-authenticate", b'Bearer realm="plughost"'), (b"x-plughost-login", b"/login")],
            )
        except ValueError as error:
            return 400, f"{error} (header X-Plughost-Workspace)", []
        except Exception as error:
            return _outage(error)
        limits = self.limits if self.limits is not None and self.limits.applies(principal, scope) else None
        if limits is not None:
            try:
                admission = await limits.admit(principal, workspace, scope, receive)
            except Exception as error:
                return _outage(error)
            if admission.refusal is not None:
                refused = admission.refusal
                await _respond(send, refused.status, refused.detail, refused.headers, scope["path"], refused.kind)
                return None
            receive, send = admission.receive, _adding(send, admission.headers)
        bound = bind_workspace(workspace) if principal.bound_workspace else contextlib.nullcontext()
        with use_principal(principal), bound:
            if limits is not None:
                await limits.serve(self.app, scope, receive, send, principal.name)
            else:
                await self.app(scope, receive, send)
        return None

    def _workspace(self, principal: Principal, scope: Scope, headers: dict[str, str]) -> str:
        """Where ``principal`` is served (see :func:`.access.served_workspace`); ValueError for a bad name."""
        requested = headers.get(WORKSPACE_HEADER) if self.workspaces else None
        if requested is not None:
            check_workspace(requested)
        return served_workspace(principal, scope.get("method", "GET"), scope["path"], requested, DEFAULT_WORKSPACE)

    def _preflight(self, origin: str, cross_origin: bool, headers: dict[str, str]) -> Refusal:
        if cross_origin and not self.origins.allows(origin):
            return (
                400,
                f"CORS preflight from {origin!r} refused; allow the origin with PLUGHOST_SECURITY_ALLOWED_ORIGINS",
                [],
            )
        extra = [
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
        ]
        requested = headers.get("access-control-request-headers")
        if requested:
            extra.append((b"access-control-allow-headers", requested.encode("latin-1")))
        return 204, "", extra

    def _host_allowed(self, host: str) -> bool:
        verdict = self.host_verdicts.get(host)
        if verdict is None:
            if len(self.host_verdicts) >= HOST_VERDICTS_KEPT:
                self.host_verdicts.clear()
            verdict = self.host_verdicts[host] = self.hosts.allows(host)
        return verdict

    def _page_shell(self, scope: Scope) -> bool:
        """Whether the request is a GET or HEAD of a page shell, which the token does not guard."""
        return (
            self.page_shell is not None
            and scope["type"] == "http"
            and scope["method"] in READING
            and self.page_shell(scope["path"])
        )

    def _with_headers(self, send: Send, cors_origin: str | None) -> Send:
        extra, extra_names = self.extra_headers, self.extra_names
        if cors_origin is not None:
            if self.origins.any:
                extra = [*extra, (b"access-control-allow-origin", b"*")]
            else:
                extra = [
                    *extra,
                    (b"access-control-allow-origin", cors_origin.encode("latin-1")),
                    (b"access-control-allow-credentials", b"true"),
                    (b"vary", b"Origin"),
                ]
            extra_names = frozenset(name for name, _ in extra)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                names = {name for name, _ in headers}
                if names.isdisjoint(extra_names):
                    message["headers"] = [*headers, *extra]
                else:  # the response's own value wins, but Vary is a list
                    message["headers"] = [*headers, *(h for h in extra if h[0] not in names or h[0] == b"vary")]
            await send(message)

        return send_with_headers


def _request_headers(scope: Scope) -> dict[str, str]:
    """The request headers this middleware reads, decoded; of a repeated header the first, as
    Starlette's ``Headers.get`` reads it, so a second ``Host`` cannot pass while the app reads the first."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in READ_HEADERS:
            key = name.decode()
            if key not in headers:
                headers[key] = value.decode("latin-1")
    return headers


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """``send`` that adds ``headers`` to the response head."""
    if not headers:
        return send

    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *headers]
        await send(message)

    return send_with


def _cookie(headers: dict[str, str], name: str) -> str | None:
    try:
        morsel = SimpleCookie(headers.get("cookie", "")).get(name)
    except CookieError:
        return None
    return morsel.value if morsel is not None and morsel.value else None


def _wants_html(headers: dict[str, str]) -> bool:
    return "text/html" in headers.get("accept", "")


def _navigation(scope: Scope, headers: dict[str, str]) -> bool:
    """Whether a browser is opening the address as a page (not a script's fetch or an API client)."""
    if scope.get("method") not in READING:
        return False
    mode = headers.get("sec-fetch-mode")
    return mode == "navigate" if mode is not None else "text/html" in headers.get("accept", "")


def _http_scheme(scope: Scope) -> str:
    scheme: str = scope.get("scheme", "http")
    return {"ws": "http", "wss": "https"}.get(scheme, scheme)


def _target(scope: Scope) -> str:
    """The path and query string the request asked for (where a sign-in returns to)."""
    path: str = scope["path"]
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _outage(error: Exception) -> Refusal:
    """503 for a store the check needs that cannot serve (see :func:`.counters.outage`); any other error is
    raised again."""
    detail = outage(error)
    if detail is None:
        raise error
    logger.warning("request refused with 503: %s", detail)
    return 503, detail, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]


async def _respond(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]], path: str, kind: str | None = None
) -> None:
    """Send a refusal; ``path`` (when given) picks the body's format and ``kind`` its error type
    (:func:`.answers.error_body`)."""
    plain = any(name == b"content-type" for name, _ in extra)
    if status in (204, 303):
        body = b""
    elif plain:
        body = detail.encode()
    else:
        body = json.dumps(error_body(path, status, detail, kind)).encode()
        extra = [(b"content-type", b"application/json"), *extra]
    headers = [(b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
