"""Payload encryption: an AES-256-GCM ``PayloadCodec`` with a keyring, so keys can rotate.

Every payload the SDK writes (workflow and activity inputs and results, queries, signals,
updates, heartbeat details, and failure messages through the encoded-attributes failure
converter) is serialized, encrypted with the *current* key and stored as::

    metadata: {"encoding": "binary/encrypted", "encryption-key-id": "<key id>"}
    data:     12-byte random nonce + AES-GCM ciphertext (with its 16-byte tag)

Decoding picks the key named by the payload, so payloads written before a rotation still decode
as long as their key stays in the keyring. Payloads that are not encrypted pass through.

Keys come from the environment, once per process (:func:`configured_codec`):

- ``LIARA_ENCRYPTION_KEYS``: ``id1:<base64 of 32 bytes>,id2:<base64>``, or
- ``LIARA_ENCRYPTION_KEY_FILE``: a file with one ``id:<base64>`` per line (``#`` comments and
  blank lines allowed);
- ``LIARA_ENCRYPTION_KEY_ID`` names the current key (encrypts new payloads); default: the first.

``new_key_line()`` (``liara codec-key``) makes a fresh random key line.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from app.temporal.errors import LiaraError
from app.temporal.secret_sources import SecretSource

KEYS_ENV = "LIARA_ENCRYPTION_KEYS"
KEY_FILE_ENV = "LIARA_ENCRYPTION_KEY_FILE"
KEY_ID_ENV = "LIARA_ENCRYPTION_KEY_ID"

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NEW_KEY_HINT = "create one with `liara codec-key`"


class EncryptionConfigError(LiaraError, ValueError):
    """The encryption keys in the environment or key file cannot be used."""


class PayloadDecryptionError(LiaraError, ValueError):
    """An encrypted payload cannot be decrypted: its key is missing or it was altered."""


@dataclass(frozen=True)
class Keyring:
    """Keys by id; ``current_id`` encrypts new payloads, every key decrypts."""

    keys: Mapping[str, bytes] = field(repr=False)
    current_id: str

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            known = ", ".join(self.keys) or "none"
            raise EncryptionConfigError(
                f"The current encryption key id {self.current_id!r} is not among the configured keys ({known}): "
                f"fix {KEY_ID_ENV} or add that key."
            )

    @classmethod
    def parse(cls, entries: Sequence[str], *, source: str, current_id: str | None = None) -> Keyring:
        """Keys from ``id:<base64>`` entries; ``source`` names where they came from in errors."""
        keys: dict[str, bytes] = {}
        for number, entry in enumerate(entries, start=1):
            key_id, separator, encoded = entry.strip().partition(":")
            key_id, encoded = key_id.strip(), encoded.strip()
            if not separator or not key_id or not encoded:
                raise EncryptionConfigError(
                    f"Entry {number} of {source} is not `id:<base64 key>`: {_NEW_KEY_HINT} and use its line."
                )
            if not _KEY_ID.fullmatch(key_id):
                raise EncryptionConfigError(
                    f"Key id {key_id[:80]!r} in {source} is not 1 to 64 letters, digits, '.', '_' or '-': rename it."
                )
            if key_id in keys:
                raise EncryptionConfigError(f"Key id {key_id!r} appears twice in {source}: give each key its own id.")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise EncryptionConfigError(
                    f"Key {key_id!r} in {source} is not valid base64: {_NEW_KEY_HINT}."
                ) from None
            if len(key) != KEY_BYTES:
                raise EncryptionConfigError(
                    f"Key {key_id!r} in {source} is {len(key)} bytes long but AES-256 needs {KEY_BYTES}: "
                    f"{_NEW_KEY_HINT}."
                )
            keys[key_id] = key
        if not keys:
            raise EncryptionConfigError(f"No keys found in {source}: {_NEW_KEY_HINT} and add its line.")
        return cls(keys=keys, current_id=current_id or next(iter(keys)))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Keyring | None:
        """The keyring the environment configures, or None when encryption is off."""
        environ = os.environ if environ is None else environ
        current_id = environ.get(KEY_ID_ENV, "").strip() or None
        configured = SecretSource(KEYS_ENV, KEY_FILE_ENV, "encryption key", EncryptionConfigError).entries(environ)
        if configured is not None:
            entries, source = configured
            return cls.parse(entries, source=source, current_id=current_id)
        if current_id:
            raise EncryptionConfigError(
                f"{KEY_ID_ENV} is set but no keys are configured: set {KEYS_ENV} or {KEY_FILE_ENV}."
            )
        return None


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole serialized payload, tagged with the id of its key."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def current_id(self) -> str:
        return self.keyring.current_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keyring.current_id
        nonce = os.urandom(NONCE_BYTES)
        # The key id is authenticated too: a payload relabelled with another id does not decrypt.
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"Payload was encrypted with key id {key_id!r}, which is not in the keyring "
                f"({', '.join(self._ciphers)}): add that key to {KEYS_ENV} or {KEY_FILE_ENV} to read it."
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except (InvalidTag, ValueError):
            raise PayloadDecryptionError(
                f"Payload encrypted with key id {key_id!r} fails authentication: it was altered or that key changed."
            ) from None
        return Payload.FromString(plain)


class KeylessCodec(PayloadCodec):
    """The codec when no keys are configured: encrypts nothing, and refuses encrypted payloads
    with an error that says how to fix it (instead of the SDK's "unknown payload encoding").
    """

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for payload in payloads:
            if payload.metadata.get("encoding") == ENCODING:
                key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", errors="replace")
                raise PayloadDecryptionError(
                    f"Payload is encrypted (key id {key_id!r}) but no encryption keys are configured: "
                    f"set {KEYS_ENV} or {KEY_FILE_ENV} to read it."
                )
        return list(payloads)


def new_key_line(key_id: str | None = None) -> str:
    """``<id>:<base64 of 32 random bytes>``; the id defaults to ``key-<8 hex digits>``."""
    key_id = key_id or f"key-{secrets.token_hex(4)}"
    if not _KEY_ID.fullmatch(key_id):
        raise EncryptionConfigError(f"Key id {key_id[:80]!r} is not 1 to 64 letters, digits, '.', '_' or '-'.")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


@functools.cache
def configured_codec() -> EncryptionCodec | None:
    """The codec of this process's environment (read once), or None when encryption is off."""
    keyring = Keyring.from_environment()
    return EncryptionCodec(keyring) if keyring else None
