"""The tables YAML tests run on, and how each is read: face rows and dataset requests from the
factory database, a tabular job's output from the object store."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import DateTime, select

from synth_pipelines.core.checks.spec import TableInfo
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, Face, TabularJob
from synth_pipelines.core.storage.object_store import ObjectStore

_MODELS = {"face_inventory": Face, "dataset_package": DatasetRequest}
TABLES: dict[str, TableInfo] = {
    "face_inventory": TableInfo(tuple(c.name for c in Face.__table__.columns)),
    "dataset_package": TableInfo(tuple(c.name for c in DatasetRequest.__table__.columns)),
    # One table per job, each with its own schema: columns are checked when a job's table is.
    "tabular_dataset": TableInfo(None, relationship_target=False),
}


def load_db_table(db: FactoryDatabase, asset: str) -> pd.DataFrame:
    """Every row of the factory table behind `asset` (face_inventory, dataset_package), with
    datetimes as UTC timestamps."""
    model = _MODELS[asset]
    with db.engine.connect() as connection:
        frame = pd.read_sql(select(model.__table__), connection)
    for column in model.__table__.columns:
        if isinstance(column.type, DateTime):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True, errors="coerce")
    return frame


def load_tabular_output(
    store: ObjectStore, job: TabularJob, columns: set[str] | None = None
) -> pd.DataFrame:
    """A completed tabular job's Parquet output as a DataFrame: only `columns` (those present)
    when given, since turning a million strings into Python objects is most of the cost."""
    key = (job.outputs or {}).get("parquet")
    if not key:
        raise ValueError(f"tabular job {job.id} has no Parquet output")
    with store.open_reader(key) as handle:
        parquet = pq.ParquetFile(io.BytesIO(handle.read()))
        wanted = None
        if columns is not None:
            wanted = [name for name in parquet.schema_arrow.names if name in columns]
        table = parquet.read(columns=wanted)
    return table.to_pandas()
