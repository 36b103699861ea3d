"""Bearer secrets (API keys, download codes): random, shown once in clear, stored as a sha256,
checked in constant time. A secret of 192 or more random bits needs no KDF: a plain hash of it
cannot be brute-forced."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> tuple[str, str]:
    """A fresh URL-safe secret of `nbytes` random bytes, in clear, and its hash."""
    secret = secrets.token_urlsafe(nbytes)
    return secret, hash_secret(secret)


def secret_matches(expected_hash: str | None, given: str) -> bool:
    """Whether `given` hashes to `expected_hash`, in constant time; with no expected hash (no
    such row) the comparison still runs, so timing tells nothing about which ids exist."""
    expected = expected_hash if expected_hash is not None else hash_secret("")
    return hmac.compare_digest(expected, hash_secret(given)) and expected_hash is not None
