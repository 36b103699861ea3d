"""Master-key rotation: every data key (personas', Flux subjects' and fitted tabular jobs')
re-wrapped under the current master key. The data itself is not touched: only the 60-byte
wrapped keys change."""

from __future__ import annotations

from sqlalchemy import select

from synth_pipelines.core.security import audit
from synth_pipelines.core.security.crypto import KeyWrapper, owner_context
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import Persona, Subject, TabularJob

# The rows that hold a wrapped data key, and the kind of owner their key context names.
KEY_HOLDERS = ((Persona, "persona"), (Subject, "subject"), (TabularJob, "tabular_job"))


def rotate_keys(db: FactoryDatabase, keys: KeyWrapper, actor: str = "cli") -> dict[str, int]:
    """Re-wrap each data key not yet under the current master key; counts of both kinds."""
    counts = {"rewrapped": 0, "current": 0}
    with db.session(locking=True) as session:
        for model, kind in KEY_HOLDERS:
            rows = session.scalars(
                select(model).where(model.wrapped_key.is_not(None)).order_by(model.id)
            ).all()
            for row in rows:
                if keys.wrapped_key_id(row.wrapped_key) == keys.current_key_id:
                    counts["current"] += 1
                    continue
                context = owner_context(kind, row.id)
                row.wrapped_key = keys.wrap(keys.unwrap(row.wrapped_key, context), context)
                if hasattr(row, "key_id"):  # a tabular job's key id is read off its wrapping
                    row.key_id = keys.current_key_id
                counts["rewrapped"] += 1
        audit.append(
            session, actor, "keys.rotated", details={**counts, "key_id": keys.current_key_id}
        )
    return counts
