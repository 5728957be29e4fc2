"""Checking credentials with accounts on: API keys (``Authorization: Bearer`` or ``x-api-key``) and console
sessions (a cookie), against a short-lived in-process cache of their hashes, so that the ingest path does not
read the database on every request; and each principal's last use, written in batches.

A key disabled or deleted through this process stops working at once; through another process (or the CLI)
within ``PLUGHOST_SECURITY_CREDENTIAL_CACHE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from core.access import AccessRefused, Principal

from .credentials import digest, digests_match, key_prefix, presented_key
from .store import AccountStore, Credential

logger = logging.getLogger("plughost.security")

SESSION_COOKIE = "plughost_session"
CSRF_COOKIE = "plughost_csrf"
CSRF_HEADER = "x-csrf-token"
CACHED_CREDENTIALS = 4096
"""Entries kept at most; beyond, the cache starts over (a flood of made-up keys cannot grow it)."""
LAST_USE_FLUSH_SECONDS = 10.0


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str


@dataclass(frozen=True)
class _Cached:
    credential: Credential | None
    csrf_token: str
    valid_until: float
    """On the monotonic clock."""


_Loader = Callable[[str, float], Awaitable[_Cached]]


class Accounts:
    """The accounts of one app: its store, the credential cache and the pending last-use times."""

    def __init__(self, store: AccountStore, cache_seconds: float) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._keys: dict[str, _Cached] = {}
        self._sessions: dict[str, _Cached] = {}
        self._last_used: dict[int, float] = {}

    async def key_principal(self, headers: Mapping[str, str]) -> Principal:
        """The principal of the API key the request presents; :class:`AccessRefused` (401) for none or a bad one."""
        presented = presented_key(headers)
        if presented is None:
            raise AccessRefused(401, "credentials required: an API key as 'Authorization: Bearer <key>'")
        prefix = key_prefix(presented)
        cached = None if prefix is None else await self._cached(self._keys, prefix, self._load_key)
        credential = cached.credential if cached else None
        if credential is None or not digests_match(presented, credential.secret_hash):
            raise AccessRefused(401, "unknown API key")
        if credential.disabled:
            raise AccessRefused(401, f"API key {credential.principal.name!r} is disabled")
        self._last_used[credential.principal.id] = time.time()
        return credential.principal

    async def session(self, token: str) -> Session | None:
        """The console session of a session cookie's value, or ``None`` (expired, signed out, unknown)."""
        cached = await self._cached(self._sessions, digest(token), self._load_session)
        if cached.credential is None or cached.credential.disabled:
            return None
        self._last_used[cached.credential.principal.id] = time.time()
        return Session(cached.credential.principal, cached.csrf_token)

    def forget(self) -> None:
        """Drop every cached credential (after a change made through this process)."""
        self._keys.clear()
        self._sessions.clear()

    async def _cached(self, cache: dict[str, _Cached], lookup: str, load: _Loader) -> _Cached:
        now = time.monotonic()
        cached = cache.get(lookup)
        if cached is None or now >= cached.valid_until:
            if len(cache) >= CACHED_CREDENTIALS:
                cache.clear()
            cached = cache[lookup] = await load(lookup, now)
        return cached

    async def _load_key(self, prefix: str, now: float) -> _Cached:
        return _Cached(await self.store.key_credential(prefix), "", now + self.cache_seconds)

    async def _load_session(self, token_hash: str, now: float) -> _Cached:
        found = await self.store.session(token_hash)
        if found is None:
            return _Cached(None, "", now + self.cache_seconds)
        credential, csrf_token, expires_at = found
        return _Cached(credential, csrf_token, now + min(self.cache_seconds, expires_at - time.time()))

    async def flush_last_use(self) -> None:
        pending, self._last_used = self._last_used, {}
        try:
            await self.store.record_use(pending)
        except Exception as error:  # the database is down: keep them for the next round
            for principal, used in pending.items():
                self._last_used.setdefault(principal, used)
            logger.warning("security: could not record when keys were last used: %s", error)

    @contextlib.asynccontextmanager
    async def recording_use(self) -> AsyncIterator[None]:
        """A lifespan: last-use times are written every few seconds and at shutdown, never on a request's path."""

        async def flush_periodically() -> None:
            while True:
                await asyncio.sleep(LAST_USE_FLUSH_SECONDS)
                await self.flush_last_use()

        task = asyncio.create_task(flush_periodically())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.flush_last_use()
