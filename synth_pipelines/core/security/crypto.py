"""Envelope encryption at rest: AES-256-GCM with one data key per persona, wrapped by a master key.

A `KeyWrapper` holds the master key; the local `Keyring` reads it from the environment through a
resource, and a KMS client can stand in for it (it only has to wrap and unwrap 32-byte keys).
Ciphertexts carry a format tag and a nonce; the associated data binds each one to its persona and
purpose, so a blob copied to another persona or another object fails authentication.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from synth_pipelines.core.errors import InvalidInputError, SynthError

CIPHERTEXT_MAGIC = b"SPE1"
WRAPPED_MAGIC = b"SPK1"
NONCE_BYTES = 12
KEY_BYTES = 32


class IntegrityError(SynthError):
    """A ciphertext that fails authentication: tampered, truncated, or under another key."""


class KeyUnavailableError(SynthError):
    """No master key configured, or a wrapped key under a master key the keyring lacks."""


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; `current_key_id` names the key new wraps use."""

    @property
    def current_key_id(self) -> str: ...

    def wrap(self, data_key: bytes, context: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: str) -> bytes: ...

    def wrapped_key_id(self, wrapped: bytes) -> str: ...


def parse_master_key(text: str, name: str = "SYNTH_MASTER_KEY") -> bytes:
    """A 32-byte key from base64 (urlsafe or standard) or 64 hex digits; a clear error otherwise."""
    text = text.strip()
    candidates: list[bytes] = []
    if len(text) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(text))
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        with contextlib.suppress(ValueError):
            candidates.append(decode(text + "=" * (-len(text) % 4)))
    for key in candidates:
        if len(key) == KEY_BYTES:
            return key
    raise InvalidInputError(
        f"{name} must be 32 random bytes as base64 or 64 hex digits "
        "(`synth keys generate` prints one)"
    )


def generate_master_key() -> str:
    """A new random master key, urlsafe base64."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (never the key): which master key wrapped a data key."""
    return hashlib.sha256(b"synth-key-id:" + key).hexdigest()[:16]


class Keyring:
    """Master keys held in memory: `current` wraps, `current` and `previous` unwrap (rotation)."""

    def __init__(self, current: bytes, previous: tuple[bytes, ...] = ()) -> None:
        if len(current) != KEY_BYTES or any(len(k) != KEY_BYTES for k in previous):
            raise InvalidInputError("master keys must be 32 bytes")
        self._current = current
        self._keys = {key_id(k): k for k in (current, *previous)}

    @classmethod
    def from_text(cls, current: str, previous: str = "") -> Keyring:
        """From SYNTH_MASTER_KEY and SYNTH_MASTER_KEYS_PREVIOUS (comma-separated) values."""
        if not current.strip():
            raise KeyUnavailableError(
                "SYNTH_MASTER_KEY is not set: personas, subjects and fitted samples are encrypted "
                "at rest and need a master key (`synth keys generate` prints a new one)"
            )
        old = tuple(
            parse_master_key(part, "SYNTH_MASTER_KEYS_PREVIOUS")
            for part in previous.split(",")
            if part.strip()
        )
        return cls(parse_master_key(current), old)

    @property
    def current_key_id(self) -> str:
        return key_id(self._current)

    def wrap(self, data_key: bytes, context: str) -> bytes:
        kid = self.current_key_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._current).encrypt(nonce, data_key, _aad("wrap", context, kid))
        return WRAPPED_MAGIC + kid + nonce + sealed

    def wrapped_key_id(self, wrapped: bytes) -> str:
        if not wrapped.startswith(WRAPPED_MAGIC) or len(wrapped) < 20 + NONCE_BYTES:
            raise IntegrityError("a wrapped data key is malformed")
        return wrapped[4:20].decode("ascii", errors="replace")

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        kid = self.wrapped_key_id(wrapped)
        master = self._keys.get(kid)
        if master is None:
            raise KeyUnavailableError(
                f"the data key for {context} is wrapped by master key {kid}, which is neither "
                "SYNTH_MASTER_KEY nor in SYNTH_MASTER_KEYS_PREVIOUS"
            )
        nonce, sealed = wrapped[20 : 20 + NONCE_BYTES], wrapped[20 + NONCE_BYTES :]
        try:
            return AESGCM(master).decrypt(nonce, sealed, _aad("wrap", context, kid.encode()))
        except InvalidTag:
            raise IntegrityError(
                f"the wrapped data key for {context} failed authentication: it was altered"
            ) from None


def keyring_from_env() -> Keyring:
    """The master keyring outside Dagster (API, CLI): SYNTH_MASTER_KEY, and during a rotation
    SYNTH_MASTER_KEYS_PREVIOUS, read from the environment, as the master-key resource reads them."""
    return Keyring.from_text(
        os.environ.get("SYNTH_MASTER_KEY", ""), os.environ.get("SYNTH_MASTER_KEYS_PREVIOUS", "")
    )


def _aad(purpose: str, context: str, extra: bytes = b"") -> bytes:
    return f"synth:{purpose}:{context}:".encode() + extra


def owner_context(kind: str, owner_id: str, key: str | None = None) -> str:
    """The associated data binding an owner's wrapped data key (and, with `key`, one of its
    ciphertexts) to that owner: "persona/<id>", "subject/<id>/<object key>"."""
    return f"{kind}/{owner_id}" + (f"/{key}" if key else "")


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(data_key: bytes, plaintext: bytes, context: str) -> bytes:
    """AES-256-GCM under `data_key`, bound to `context` (e.g. "persona/<id>/source/<id>")."""
    nonce = os.urandom(NONCE_BYTES)
    return (
        CIPHERTEXT_MAGIC + nonce + AESGCM(data_key).encrypt(nonce, plaintext, _aad("data", context))
    )


def decrypt(data_key: bytes, blob: bytes, context: str) -> bytes:
    """The plaintext of `encrypt`; IntegrityError naming `context` if anything was altered."""
    if not blob.startswith(CIPHERTEXT_MAGIC) or len(blob) < 4 + NONCE_BYTES + 16:
        raise IntegrityError(f"{context} is not a synth_pipelines ciphertext (bad header)")
    nonce, sealed = blob[4 : 4 + NONCE_BYTES], blob[4 + NONCE_BYTES :]
    try:
        return AESGCM(data_key).decrypt(nonce, sealed, _aad("data", context))
    except InvalidTag:
        raise IntegrityError(
            f"integrity check failed for {context}: the ciphertext was tampered with, truncated "
            "or encrypted under another key"
        ) from None
