"""HTTP calls to LLM providers, each in its own wire format, over the gateway's pooled aiohttp client.

Imported on the gateway's first provider call (see ``Gateway.upstream``), not at start-up: aiohttp
is a tenth of the server's start-up CPU.

Redirects are never followed (a redirect could lead to a host the SSRF guard never
checked): a 3xx answer is a provider error. A provider's error body is never relayed:
only the ``error.message`` string of a JSON error, sanitized and cut short, is kept.
A stream that ends without the provider's terminal event (``[DONE]``,
``message_stop``) raises ``UpstreamError`` (truncated) instead of passing off a
partial answer as complete. Without ``allow_private``, names are resolved by ``PublicResolver``,
so the addresses connected to are checked too (:mod:`.ssrf`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .formats import Event
from .providers import OPENAI_BASE, UpstreamError, chat_url
from .settings import Settings
from .ssrf import is_public
from .store import Target

ERROR_BODY_LIMIT = 64 * 1024
ERROR_MESSAGE_LIMIT = 300
LINE_LIMIT = 128 * 1024
"""The longest unfinished line a stream's reader keeps between reads (bytes; aiohttp's line reader's limit)."""


class Upstream:
    """The pooled HTTP client to the providers (one per process; made inside the event loop) and the calls
    made with it."""

    def __init__(self, settings: Settings) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=settings.timeout_seconds),
            connector=aiohttp.TCPConnector(
                limit=256, keepalive_timeout=60, resolver=None if settings.allow_private else PublicResolver()
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # a provider's cookies must not carry over between users
        )

    async def close(self) -> None:
        await self.session.close()

    async def post(self, target: Target, url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[bytes, Any]:
        """POST ``body``; the answer's bytes and their parsed JSON."""
        response = await _send(self.session, url, headers, body, target)
        try:
            raw = await response.read()
            return raw, json.loads(raw)
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise UpstreamError(
                f"{target.name}: the provider's answer broke off or is not JSON: {type(error).__name__}"
            ) from None
        finally:
            response.release()

    async def stream(self, target: Target, body: dict[str, Any]) -> AsyncGenerator[list[Event], None]:
        """The provider's events as they come, ending with its terminal event: those of each read from the
        connection together (they came at the same moment: none waits for a later one). Errors before the
        first are the provider's; the events before a bad one come before its ``UpstreamError``."""
        url, headers = chat_url(target)
        response = await _send(self.session, url, headers, body, target)
        terminal = "[DONE]" if target.provider == "openai" else "message_stop"
        try:
            async for events in _sse(response.content, target.name):
                batch: list[Event] = []
                failure: UpstreamError | None = None
                for event in events:
                    try:
                        batch.append(_checked(event, target.name))
                    except UpstreamError as error:
                        failure = error
                        break
                    if event.payload is None or event.payload.get("type") == terminal:
                        yield batch
                        return
                if batch:
                    yield batch
                if failure is not None:
                    raise failure
        except (TimeoutError, aiohttp.ClientError) as error:
            raise UpstreamError(
                f"{target.name}: the stream broke off: {type(error).__name__}",
                timeout=isinstance(error, asyncio.TimeoutError),
            ) from None
        finally:
            response.close()
        raise UpstreamError(f"{target.name}: the provider's stream ended before {terminal}: the answer is truncated")

    async def embed(self, target: Target, payload: dict[str, Any]) -> Any:
        if target.provider != "openai":
            raise UpstreamError(f"{target.name}: provider {target.provider!r} has no embeddings API", status=400)
        url = f"{(target.base_url or OPENAI_BASE).rstrip('/')}/embeddings"
        headers = {"authorization": f"Bearer {target.api_key}", **target.headers}
        return (await self.post(target, url, headers, {**payload, "model": target.model}))[1]


async def _send(
    client: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any], target: Target
) -> aiohttp.ClientResponse:
    """POST ``body``; the response (headers read, body not yet) or an ``UpstreamError``."""
    try:
        response = await client.post(url, json=body, headers=headers, allow_redirects=False)
    except TimeoutError:
        raise UpstreamError(f"{target.name}: the provider did not answer in time", timeout=True) from None
    except aiohttp.ClientConnectorError as error:
        raise UpstreamError(f"{target.name}: cannot reach the provider: {error.os_error}") from None
    except aiohttp.ClientError as error:
        raise UpstreamError(f"{target.name}: cannot reach the provider: {type(error).__name__}") from None
    if 300 <= response.status < 400:
        response.release()
        raise UpstreamError(
            f"{target.name}: the provider answered {response.status}, a redirect, which the gateway does not follow",
            status=502,
        )
    if response.status >= 400:
        try:
            detail = _message_of(json.loads(await _read_capped(response.content, ERROR_BODY_LIMIT)))
        except (TimeoutError, aiohttp.ClientError, ValueError, RecursionError):
            detail = ""
        finally:
            response.release()
        raise UpstreamError(
            f"{target.name}: the provider answered {response.status}{detail}",
            status=response.status,
            retry_after=response.headers.get("retry-after"),
        )
    return response


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """At most ``limit`` bytes of a body (an error body is read for its message only)."""
    chunks, size = [], 0
    while size < limit and (chunk := await content.read(limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _message_of(answer: Any) -> str:
    """``": <message>"`` from a JSON error of either format, sanitized and cut short; else nothing."""
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        return ""
    cleaned = "".join(char if char.isprintable() else " " for char in message[:ERROR_MESSAGE_LIMIT])
    return f": {cleaned}{'…' if len(message) > ERROR_MESSAGE_LIMIT else ''}"


def _checked(event: Event, provider: str) -> Event:
    """``event`` with its JSON parsed (``[DONE]`` has none), or an ``UpstreamError``: not a JSON object, or the
    provider's report of an error."""
    if event.data == "[DONE]":
        return event
    try:
        event.payload = json.loads(event.data)
    except ValueError:
        raise UpstreamError(f"{provider}: the provider's stream holds an event that is not JSON") from None
    if not isinstance(event.payload, dict):
        raise UpstreamError(f"{provider}: the provider's stream holds an event that is not a JSON object")
    if event.name == "error" or "error" in event.payload and event.payload.get("type") in (None, "error"):
        raise UpstreamError(f"{provider}: the provider reported an error mid-stream{_message_of(event.payload)}")
    return event


async def _sse(content: aiohttp.StreamReader, provider: str) -> AsyncIterator[list[Event]]:
    """The events of a server-sent event stream, those complete after each read together (one read, not one
    per line: a stream's events often come in one piece)."""
    parser = EventParser(provider)
    while chunk := await content.readany():
        if events := parser.feed(chunk):
            yield events
    if events := parser.end():
        yield events


class EventParser:
    """Server-sent events out of a stream's bytes, however the reads cut them."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.partial = b""
        """The start of a line whose end has not come yet."""
        self.name: str | None = None
        self.data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        """The events that ``chunk`` completes."""
        lines = (self.partial + chunk if self.partial else chunk).split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > LINE_LIMIT:
            raise UpstreamError(f"{self.provider}: the provider's stream holds a line over {LINE_LIMIT} bytes")
        events: list[Event] = []
        for line in lines:
            self._line(line.decode().rstrip("\r"), events)
        return events

    def end(self) -> list[Event]:
        """The event left when the stream ends without its blank line."""
        events: list[Event] = []
        if self.partial:
            self._line(self.partial.decode().rstrip("\r"), events)
            self.partial = b""
        if self.data:
            events.append(Event(self.name, "\n".join(self.data)))
        return events

    def _line(self, line: str, events: list[Event]) -> None:
        if not line:
            if self.data:
                events.append(Event(self.name, "\n".join(self.data)))
            self.name, self.data = None, []
        elif line.startswith("event:"):
            self.name = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].lstrip())


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to a non-public address when the connection is made.

    The check on write and before a call resolves the name once; this one holds for the
    addresses actually connected to, so a name that changes its answer (DNS rebinding)
    cannot lead a call into the private network.
    """

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        for result in found:
            address = ipaddress.ip_address(result["host"].split("%", 1)[0])
            if not is_public(address):
                raise OSError(f"{host!r} resolves to {address}, a non-public address")
        return found

    async def close(self) -> None:
        await self._resolver.close()
