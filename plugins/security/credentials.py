"""Secrets and their hashes: API keys (random, shown once, stored as SHA-256 with a visible prefix for lookup),
passwords (argon2id) and session tokens. Nothing here touches the database."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

KEY_SCHEME = "ph_"
PREFIX_LENGTH = 8  # hex characters after "ph_": the part of a key kept in clear, to find its row
SECRET_BYTES = 32


@dataclass(frozen=True)
class NewKey:
    key: str
    """The whole key: shown once, never stored."""
    prefix: str
    """``ph_`` and the first characters: stored in clear and listed, to tell keys apart."""
    digest: str


def new_key() -> NewKey:
    key = f"{KEY_SCHEME}{secrets.token_hex(PREFIX_LENGTH // 2)}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewKey(key, key_prefix(key) or "", digest(key))


def key_prefix(presented: str) -> str | None:
    """The lookup prefix of something presented as a key, or ``None`` when it is not shaped like one."""
    end = len(KEY_SCHEME) + PREFIX_LENGTH
    if not presented.startswith(KEY_SCHEME) or len(presented) <= end + 1 or presented[end] != "_":
        return None
    return presented[:end]


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret (a key, a session token): enough, since nothing can guess one, and fast
    enough to check on every request."""
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_match(presented: str, stored: str) -> bool:
    return hmac.compare_digest(digest(presented), stored)


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2's hasher, imported with the first password hashed or checked, not at start-up."""
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """argon2id with the library's defaults (CPU- and memory-hard: run it off the event loop)."""
    return _hasher().hash(password)


def password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (off the event loop, like :func:`hash_password`)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_session_token() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer <key>``, else ``x-api-key: <key>`` (as the Anthropic SDK sends it)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


def token_matches(headers: Mapping[str, str], token: bytes) -> bool:
    """Whether the request presents the one token (``PLUGHOST_SECURITY_TOKEN``), compared in constant time."""
    return hmac.compare_digest((presented_key(headers) or "").encode(), token)
