"""API keys: one per user and role, stored as a hash, checked in constant time.

A key reads `sp_<id>_<secret>`: the id finds the row, the secret's sha256 is compared with
`hmac.compare_digest`. The secret is 256 random bits, so a plain sha256 is enough (no KDF needed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
)
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.tokens import new_secret, secret_matches
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import API_KEY_ROLES, ApiKey

_TOKEN = re.compile(r"^sp_([0-9a-f]{32})_([A-Za-z0-9_-]{20,})$")
_USER = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their role and the key they used."""

    user: str
    role: str
    key_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.user}"

    def may_see(self, owner: str) -> bool:
        """Admins see everything; owners what they own."""
        return self.is_admin or owner == self.user


def create_api_key(db: FactoryDatabase, user: str, role: str, actor: str = "cli") -> str:
    """A new key for `user` with `role`; the returned token is shown once and never stored."""
    if role not in API_KEY_ROLES:
        raise InvalidInputError(f"role {role!r} is not one of: {', '.join(API_KEY_ROLES)}")
    if not _USER.match(user):
        raise InvalidInputError(
            f"user {user!r} must be 1-128 letters, digits or . _ @ - (no spaces)"
        )
    secret, secret_hash = new_secret(32)
    with db.session(locking=True) as session:
        key = ApiKey(user=user, role=role, secret_hash=secret_hash)
        session.add(key)
        session.flush()
        audit.append(
            session, actor, "api_key.created", target=key.id, details={"user": user, "role": role}
        )
        return f"sp_{key.id}_{secret}"


def revoke_api_key(db: FactoryDatabase, key_id: str, actor: str = "cli") -> None:
    with db.session(locking=True) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFoundError(f"API key {key_id} does not exist")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            audit.append(
                session, actor, "api_key.revoked", target=key_id, details={"user": key.user}
            )


def list_api_keys(db: FactoryDatabase) -> list[ApiKey]:
    with db.session() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def key_principal(db: FactoryDatabase, key_id: str) -> tuple[Principal, str]:
    """The principal of the API key `key_id` and the key's stored secret hash (what a portal
    session is bound to, so a new secret ends it); AuthenticationError for an unknown or
    revoked key, with `authenticate`'s message."""
    with db.session(read_only=True) as session:
        key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise AuthenticationError("invalid or revoked API key")
    return Principal(user=key.user, role=key.role, key_id=key.id), key.secret_hash


def authenticate(db: FactoryDatabase, token: str | None) -> Principal:
    """The principal for `token`; AuthenticationError for a missing, malformed, unknown or
    revoked key (one message for all, so a caller learns nothing about which)."""
    if not token:
        raise AuthenticationError("an API key is required: send 'Authorization: Bearer sp_…'")
    match = _TOKEN.match(token)
    with db.session(read_only=True) as session:
        key = session.get(ApiKey, match.group(1)) if match else None
    # Compared even without a row, so timing says nothing about which ids exist.
    given = match.group(2) if match else token
    if not secret_matches(key.secret_hash if key else None, given) or key.revoked_at is not None:
        raise AuthenticationError("invalid or revoked API key")
    return Principal(user=key.user, role=key.role, key_id=key.id)
