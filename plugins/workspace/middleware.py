"""The workspace middleware: ``X-Plughost-Workspace`` -> the request's workspace (see ``core.context``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.asgi import send_json_error
from core.context import DEFAULT_WORKSPACE, WORKSPACE_HEADER, current_workspace, use_workspace, workspace_bound

HEADER = WORKSPACE_HEADER.encode()
ECHOES_KEPT = 1024


class WorkspaceMiddleware:
    """Sets the current workspace for the whole request (routers, the WSGI app, tasks it starts),
    clears it afterwards, and names it in a response header. An invalid name gets 400. A workspace
    an outer middleware bound (``core.context.bind_workspace``: a credential of one workspace) is kept."""

    def __init__(self, app: ASGIApp, settings: object = None) -> None:
        self.app = app
        self.echoes: dict[str, tuple[bytes, bytes]] = {}
        """Workspace name -> its response header, for the names seen valid (a server sees few)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        name = DEFAULT_WORKSPACE
        for header, value in scope["headers"]:
            if header == HEADER:
                name = value.decode("latin-1")
                break
        if workspace_bound():
            name = current_workspace()
        try:
            workspace = use_workspace(name)
        except ValueError as error:
            await _refuse(scope, send, f"{error} (header X-Plughost-Workspace)")
            return
        echoed = self.echoes.get(name) or self._echo(name)

        async def send_with_workspace(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), echoed]
            await send(message)

        with workspace:
            await self.app(scope, receive, send_with_workspace)

    def _echo(self, name: str) -> tuple[bytes, bytes]:
        if len(self.echoes) >= ECHOES_KEPT:
            self.echoes.clear()
        echoed = self.echoes[name] = (HEADER, name.encode())
        return echoed


async def _refuse(scope: Scope, send: Send, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    await send_json_error(send, 400, detail)
