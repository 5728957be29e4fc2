"""Envelope encryption of provider credentials: a fresh data key per secret, wrapped by the key-encryption key.

The key-encryption key (KEK) comes from ``PLUGHOST_GATEWAY_KEK`` or, without it,
from a key file created in the data dir with mode 0600. Each stored secret
records the fingerprint of the KEK that wrapped it, so a changed KEK is reported
as such instead of as corrupt data.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger("plughost.gateway")

KEY_FILE = "gateway-kek"


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    wrapped_key: bytes
    kek_id: str


class Envelope:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (base64 in PLUGHOST_GATEWAY_KEK)")
        self._kek = AESGCM(kek)
        self.kek_id = hashlib.sha256(kek).hexdigest()[:16]

    @classmethod
    def load(cls, configured: str | None, data_dir: Path) -> Envelope:
        if configured:
            try:
                return cls(base64.b64decode(configured, validate=True))
            except (ValueError, TypeError) as error:
                raise ValueError(f"PLUGHOST_GATEWAY_KEK: {error}") from None
        path = data_dir / KEY_FILE
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as key_file:
                key_file.write(AESGCM.generate_key(bit_length=256))
        logger.warning(
            "gateway: PLUGHOST_GATEWAY_KEK is not set; provider keys are encrypted with the key file %s. "
            "Set PLUGHOST_GATEWAY_KEK (32 random bytes, base64) to keep the key out of the data dir.",
            path,
        )
        return cls(path.read_bytes())

    def seal(self, plaintext: bytes, context: str) -> Sealed:
        """Encrypt ``plaintext`` bound to ``context`` (workspace and name: a sealed value moved elsewhere fails)."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce, key_nonce = os.urandom(12), os.urandom(12)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, context.encode())
        wrapped = key_nonce + self._kek.encrypt(key_nonce, data_key, context.encode())
        return Sealed(ciphertext, wrapped, self.kek_id)

    def open(self, sealed: Sealed, context: str) -> bytes:
        if sealed.kek_id != self.kek_id:
            raise ValueError(
                f"this secret was sealed with another key-encryption key ({sealed.kek_id}); restore that KEK"
            )
        try:
            data_key = self._kek.decrypt(sealed.wrapped_key[:12], sealed.wrapped_key[12:], context.encode())
            return AESGCM(data_key).decrypt(sealed.ciphertext[:12], sealed.ciphertext[12:], context.encode())
        except InvalidTag:
            raise ValueError("the secret does not decrypt: its data was altered or moved") from None
