"""The security middleware: Host allow-list, cross-origin write protection, CORS, token, headers.

Pure ASGI: it reads the request head and edits the response head only, so
streamed bodies pass through untouched. Its own refusals carry the same
security headers as every other response.

The token is not asked of a GET or HEAD of a page shell (``page_shell``, the
host's :meth:`core.Host.is_page_shell`): the console's pages and static files
hold no data, and a browser must load them before it can ask for the token.
Every other check still applies to them.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .hosts import HostAllowList, OriginPolicy, same_origin
from .settings import Settings

logger = logging.getLogger("plughost.security")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READING = frozenset({"GET", "HEAD"})
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_MAX_AGE = "600"
HOST_VERDICTS_KEPT = 1024
READ_HEADERS = frozenset(
    {
        b"host",
        b"origin",
        b"authorization",
        b"x-api-key",
        b"sec-fetch-site",
        b"access-control-request-method",
        b"access-control-request-headers",
        b"accept",
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


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, *, page_shell: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.page_shell = page_shell
        self.hosts = HostAllowList(settings.allowed_hosts)
        self.host_verdicts: dict[str, bool] = {}  # Host header -> allowed; a server sees few distinct ones
        self.origins = OriginPolicy(settings.allowed_origins)
        self.token = settings.token.get_secret_value().encode() if settings.token else None
        self.exempt = frozenset(settings.exempt_paths)
        self.extra_headers = [(b"x-content-type-options", b"nosniff")]
        if settings.frame_options:
            self.extra_headers.append((b"x-frame-options", settings.frame_options.encode()))
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
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1][:120]})
        else:
            status, detail, extra = refusal
            if status == 401 and _navigation(scope, headers):
                detail, extra = TOKEN_PAGE, [*extra, (b"content-type", b"text/html; charset=utf-8")]
            await _respond(send, status, detail, extra)

    def _refusal(
        self, scope: Scope, headers: dict[str, str], host: str, origin: str | None, cross_origin: bool
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
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
        if self.token is not None and not self._authorised(headers) and not self._page_shell(scope):
            return (
                401,
                "missing or wrong bearer token (PLUGHOST_SECURITY_TOKEN)",
                [(b"www-authenticate", b'Bearer realm="plughost"')],
            )
        return None

    def _preflight(
        self, origin: str, cross_origin: bool, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[bytes, bytes]]]:
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

    def _authorised(self, headers: dict[str, str]) -> bool:
        """``Authorization: Bearer <token>``, or ``x-api-key: <token>`` as the anthropic SDK sends it."""
        assert self.token is not None
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self.token):
            return True
        return hmac.compare_digest(headers.get("x-api-key", "").encode(), self.token)

    def _with_headers(self, send: Send, cors_origin: str | None) -> Send:
        extra = self.extra_headers
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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                present = {name for name, _ in headers}
                message["headers"] = [*headers, *(h for h in extra if h[0] not in present or h[0] == b"vary")]
            await send(message)

        return send_with_headers


def _request_headers(scope: Scope) -> dict[str, str]:
    """The request headers this middleware reads, decoded; of a repeated header the first, as
    Starlette's ``Headers.get`` reads it, so a second ``Host`` cannot pass while the app reads the first."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name in READ_HEADERS and name.decode() not in headers:
            headers[name.decode()] = value.decode("latin-1")
    return headers


def _navigation(scope: Scope, headers: dict[str, str]) -> bool:
    """Whether a browser is opening the address as a page (not a script's fetch or an API client)."""
    if scope.get("method") not in READING:
        return False
    mode = headers.get("sec-fetch-mode")
    return mode == "navigate" if mode is not None else "text/html" in headers.get("accept", "")


def _http_scheme(scope: Scope) -> str:
    scheme: str = scope.get("scheme", "http")
    return {"ws": "http", "wss": "https"}.get(scheme, scheme)


async def _respond(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    plain = any(name == b"content-type" for name, _ in extra)
    if status == 204:
        body = b""
    elif plain:
        body = detail.encode()
    else:
        body = json.dumps({"detail": detail}).encode()
        extra = [(b"content-type", b"application/json"), *extra]
    headers = [(b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
