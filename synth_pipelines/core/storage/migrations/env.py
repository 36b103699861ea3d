"""Alembic environment: migrates the engine handed over by FactoryDatabase (or a -x url)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from synth_pipelines.core.storage.database import VERSION_TABLE
from synth_pipelines.core.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            version_table=VERSION_TABLE,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
