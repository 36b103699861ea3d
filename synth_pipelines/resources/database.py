"""The factory database as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from synth_pipelines.core.storage.database import FactoryDatabase


class FactoryDatabaseResource(dg.ConfigurableResource):
    """The factory database (SQLite file by default, PostgreSQL via SYNTH_DATABASE_URL).

    The schema is migrated to head on first use, so a fresh SYNTH_HOME works without a set-up
    step; `synth db upgrade` does the same explicitly.
    """

    url: str = Field(description="SQLAlchemy URL: sqlite:///… or postgresql+psycopg://…")
    auto_migrate: bool = Field(default=True, description="Upgrade the schema on first use.")

    _database: FactoryDatabase | None = PrivateAttr(default=None)

    def get_db(self) -> FactoryDatabase:
        if self._database is None:
            database = FactoryDatabase(self.url)
            if self.auto_migrate:
                database.upgrade()
            self._database = database
        return self._database

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # Each run (and each in-process execution) builds its own engine: close its pooled
        # connections when the run ends rather than when the garbage collector gets to them.
        if self._database is not None:
            self._database.dispose()
            self._database = None
