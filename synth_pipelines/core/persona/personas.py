"""Personas and their consent: creation, visibility, consent checks and the persona's data key.

Every step that touches a persona's data calls `require_consent` first: no consent, an expired
or revoked one, or one whose scope lacks the source or use → PermissionDeniedError (HTTP 403)
naming the reason, before anything is read or stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from synth_pipelines.core.clock import aware, iso
from synth_pipelines.core.errors import (
    FieldError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
)
from synth_pipelines.core.persona.messages import EXPORT_FORMATS
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.security.crypto import KeyWrapper, new_data_key, owner_context
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Consent, Persona

CONSENT_USES = ("training", "generation")
DEFAULT_CONSENT_DAYS = 365


@dataclass(frozen=True)
class ConsentGrant:
    """What the person agreed to: export formats, uses, the consent text (or its sha256), who
    granted it and until when (default: a year from granting)."""

    sources: tuple[str, ...]
    uses: tuple[str, ...]
    granted_by: str
    text: str | None = None
    text_sha256: str | None = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None

    def validated(self) -> ConsentGrant:
        bad = [s for s in self.sources if s not in EXPORT_FORMATS]
        if not self.sources or bad:
            raise FieldError(
                "consent.sources",
                f"consent.sources must list export formats from: {', '.join(EXPORT_FORMATS)}"
                + (f" (got {', '.join(map(repr, bad))})" if bad else ""),
            )
        bad = [u for u in self.uses if u not in CONSENT_USES]
        if not self.uses or bad:
            raise FieldError(
                "consent.uses",
                f"consent.uses must list uses from: {', '.join(CONSENT_USES)}"
                + (f" (got {', '.join(map(repr, bad))})" if bad else ""),
            )
        if not self.granted_by.strip():
            raise FieldError("consent.granted_by", "consent.granted_by names who granted it")
        digest = self.text_sha256
        if self.text is not None:
            if not self.text.strip():
                raise FieldError("consent.text", "consent.text is empty")
            digest = hashlib.sha256(self.text.encode()).hexdigest()
            if self.text_sha256 and self.text_sha256.lower() != digest:
                raise FieldError("consent.text_sha256", "consent.text_sha256 does not match text")
        if not digest or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FieldError(
                "consent.text_sha256",
                "consent needs the consent text or its sha256 (64 lowercase hex digits)",
            )
        granted_at = aware(self.granted_at) or datetime.now(UTC)
        expires_at = aware(self.expires_at) or granted_at + timedelta(days=DEFAULT_CONSENT_DAYS)
        if expires_at <= granted_at:
            raise FieldError("consent.expires_at", "consent.expires_at must be after granted_at")
        if expires_at <= datetime.now(UTC):
            raise FieldError("consent.expires_at", "consent.expires_at is in the past")
        return ConsentGrant(
            sources=tuple(dict.fromkeys(self.sources)),
            uses=tuple(dict.fromkeys(self.uses)),
            granted_by=self.granted_by.strip(),
            text_sha256=digest.lower(),
            granted_at=granted_at,
            expires_at=expires_at,
        )


def create_persona(
    db: FactoryDatabase,
    keys: KeyWrapper,
    principal: Principal,
    display_name: str,
    self_ids: list[str],
    grant: ConsentGrant,
) -> tuple[Persona, Consent]:
    """A persona with its consent record and a fresh data key wrapped by the master key."""
    if not display_name.strip():
        raise FieldError("display_name", "display_name is required")
    ids = [s.strip() for s in self_ids if s and s.strip()]
    if not ids:
        raise FieldError(
            "self_ids",
            "self_ids must name how the person appears in their exports (sender name, phone "
            "number or email address), to tell their messages from others'",
        )
    grant = grant.validated()
    with db.session(locking=True) as session:
        persona = Persona(
            owner=principal.user, display_name=display_name.strip(), self_ids=ids, status="active"
        )
        session.add(persona)
        session.flush()
        persona.wrapped_key = keys.wrap(new_data_key(), persona_context(persona.id))
        persona.key_id = keys.current_key_id
        consent = Consent(
            persona_id=persona.id,
            sources=list(grant.sources),
            uses=list(grant.uses),
            text_sha256=grant.text_sha256 or "",
            granted_by=grant.granted_by,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
        )
        session.add(consent)
        session.flush()
        audit.append(session, principal.actor, "persona.created", persona_id=persona.id)
        audit.append(
            session,
            principal.actor,
            "consent.granted",
            persona_id=persona.id,
            target=consent.id,
            details={
                "sources": consent.sources,
                "uses": consent.uses,
                "text_sha256": consent.text_sha256,
                "expires_at": iso(grant.expires_at),
            },
        )
        return persona, consent


def persona_context(persona_id: str) -> str:
    """The associated data that binds a persona's wrapped key and ciphertexts to it."""
    return owner_context("persona", persona_id)


def load_persona(session: Session, principal: Principal | None, persona_id: str) -> Persona:
    """The persona if `principal` may see it (its owner or an admin; None: the pipeline).

    Someone else's persona is a 404, not a 403: its existence is private too. A revoked one is
    a 410 for those who may see it.
    """
    persona = session.get(Persona, persona_id)
    if persona is None or (principal is not None and not principal.may_see(persona.owner)):
        raise NotFoundError(f"persona {persona_id} does not exist")
    if persona.status == "revoked":
        raise GoneError(f"persona {persona_id}: consent was revoked and its data deleted")
    return persona


def active_consent(session: Session, persona_id: str) -> Consent | None:
    return session.scalars(
        select(Consent)
        .where(Consent.persona_id == persona_id, Consent.revoked_at.is_(None))
        .order_by(Consent.granted_at.desc())
    ).first()


def require_consent(
    session: Session, persona_id: str, use: str, source: str | None = None
) -> Consent:
    """The consent that covers `use` (and `source`); PermissionDeniedError with the reason."""
    consent = active_consent(session, persona_id)
    if consent is None:
        raise PermissionDeniedError(f"persona {persona_id} has no consent on record")
    now = datetime.now(UTC)
    expires_at = aware(consent.expires_at)
    if expires_at is not None and expires_at <= now:
        raise PermissionDeniedError(
            f"persona {persona_id}: consent expired at {expires_at.isoformat()}"
        )
    if use not in consent.uses:
        raise PermissionDeniedError(
            f"persona {persona_id}: consent does not cover {use!r} "
            f"(it covers: {', '.join(consent.uses)})"
        )
    if source is not None and source not in consent.sources:
        raise PermissionDeniedError(
            f"persona {persona_id}: consent does not cover {source!r} exports "
            f"(it covers: {', '.join(consent.sources)})"
        )
    return consent


def data_key(persona: Persona, keys: KeyWrapper) -> bytes:
    """The persona's data key, unwrapped by the master key."""
    if persona.wrapped_key is None:
        raise GoneError(f"persona {persona.id} has no data key: its data was deleted")
    return keys.unwrap(persona.wrapped_key, persona_context(persona.id))
