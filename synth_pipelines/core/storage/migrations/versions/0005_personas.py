"""personas: api keys, personas, consents, sources, adapter registry, drafts, audit log

Revision ID: 0005_personas
Revises: 0004_checks
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_personas"
down_revision = "0004_checks"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "personas",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("self_ids", sa.JSON(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("corpus_sha256", sa.String(64), nullable=True),
        sa.Column("dataset_key", sa.String(512), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personas")),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("persona_id", sa.String(32), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("uses", sa.JSON(), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("granted_by", sa.String(256), nullable=False),
        sa.Column("granted_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index("ix_consents_persona_id", "consents", ["persona_id"])
    op.create_table(
        "persona_sources",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("persona_id", sa.String(32), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("persona_messages", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_sources")),
    )
    op.create_index(
        "ix_persona_sources_persona_id", "persona_sources", ["persona_id", "uploaded_at"]
    )
    op.create_table(
        "persona_adapters",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("persona_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("corpus_sha256", sa.String(64), nullable=False),
        sa.Column("consent_id", sa.String(32), nullable=False),
        sa.Column("base_model", sa.String(512), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_adapters")),
        sa.UniqueConstraint(
            "persona_id", "version", name=op.f("uq_persona_adapters_persona_id_version")
        ),
    )
    op.create_table(
        "persona_drafts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("persona_id", sa.String(32), nullable=False),
        sa.Column("adapter_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("prompt_ct", sa.LargeBinary(), nullable=False),
        sa.Column("text_ct", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("reviewed_by", sa.String(128), nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_drafts")),
    )
    op.create_index("ix_persona_drafts_persona_id", "persona_drafts", ["persona_id", "status"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("persona_id", sa.String(32), nullable=True),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_persona_id", "audit_log", ["persona_id"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_persona_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_persona_drafts_persona_id", table_name="persona_drafts")
    op.drop_table("persona_drafts")
    op.drop_table("persona_adapters")
    op.drop_index("ix_persona_sources_persona_id", table_name="persona_sources")
    op.drop_table("persona_sources")
    op.drop_index("ix_consents_persona_id", table_name="consents")
    op.drop_table("consents")
    op.drop_table("personas")
    op.drop_table("api_keys")
