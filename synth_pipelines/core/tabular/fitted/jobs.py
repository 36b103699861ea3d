"""Jobs fitted to a real sample: the use cases behind `POST /tabular/jobs` with a sample and
`synth tabular fit`.

    read the sample (SampleError naming the column and the reason)
      -> split off a holdout the fit never sees (the privacy checks measure against it)
      -> infer the schema from the training part, fit the model (no raw rows kept in it)
      -> store both parts encrypted: AES-256-GCM under a data key of the job's own, wrapped by
         the master key (SYNTH_MASTER_KEY), each blob bound to its job and object key
      -> the job row, a draft like a drafted one: confirm, generate and check as any job

Nothing partial is stored: an error deletes what was written. The sample stays (encrypted)
until the job's checks have run on a generated table; with SYNTH_TABULAR_SAMPLE_RETENTION=delete
it is deleted then, with `keep` it stays for reruns (retries need it either way: a failed job
keeps it).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_pipelines.core.security.crypto import (
    KeyWrapper,
    decrypt,
    encrypt,
    new_data_key,
    owner_context,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import TabularJob, new_id
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.fitted.metrics import split_holdout
from synth_pipelines.core.tabular.fitted.sample_io import read_sample
from synth_pipelines.core.tabular.jobs import create_job, get_job
from synth_pipelines.core.tabular.schema import TableSchema

KIND = "tabular_job"  # the key context of a fitted job's data key
DRAFTER = "fitted"
PARTS = ("train", "holdout")


def table_name(filename: str) -> str:
    """A sample file's table name: its stem as an identifier ("Customers 2024.csv" ->
    "customers_2024")."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(filename).stem).strip("_").lower()
    return (stem if stem[:1].isalpha() else f"t_{stem}")[:63] or "table"


def fit_sample(df: pd.DataFrame, *, name: str, seed: int, min_category_count: int) -> TableSchema:
    """The schema inferred from `df`, with the model fitted to it."""
    from synth_pipelines.core.tabular.fitted.infer import infer_schema
    from synth_pipelines.core.tabular.fitted.model import fit_model

    schema = infer_schema(df, name=name)
    return fit_model(df, schema, seed=seed, min_category_count=min_category_count)


def _parquet(df: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out, compression="zstd")
    return out.getvalue()


def _object_key(job_id: str, part: str) -> str:
    return f"tabular/{job_id}/sample/{part}.parquet.enc"


def create_fitted_job(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    data: bytes | Path,
    *,
    filename: str,
    owner: str,
    max_bytes: int,
    holdout_share: float,
    min_category_count: int,
    rows: int | None = None,
    seed: int = 0,
) -> TabularJob:
    """A draft job fitted to the sample in `data` (CSV or Parquet bytes, or a path)."""
    df = read_sample(data, filename=filename, max_bytes=max_bytes)
    train, holdout = (
        part.reset_index(drop=True) for part in split_holdout(df, share=holdout_share, seed=seed)
    )
    schema = fit_sample(
        train, name=table_name(filename), seed=seed, min_category_count=min_category_count
    )
    schema = schema.model_copy(update={"rows": rows or len(df)})
    return store_fitted_job(
        db, store, keys, dict(zip(PARTS, (train, holdout), strict=True)),
        prompt=f"fitted to {filename} ({len(df):,} rows, {len(df.columns)} columns)",
        schema=schema, owner=owner,
        sample={"filename": filename, "rows": len(df), "train_rows": len(train),
                "holdout_rows": len(holdout), "seed": seed},
    )  # fmt: skip


def store_fitted_job(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    parts: dict[str, pd.DataFrame],
    *,
    prompt: str,
    schema: TableSchema,
    owner: str,
    sample: dict[str, Any],
    **columns: Any,
) -> TabularJob:
    """The draft job of a fitted model: each of `parts` ("train", "holdout", or per table
    "orders/train") stored encrypted under a new data key of the job's own, the `sample`
    record listing them; `columns`: further columns of the job (a multi-table job's tables).
    Nothing stays stored when it fails."""
    job_id = new_id()
    data_key = new_data_key()
    wrapped = keys.wrap(data_key, owner_context(KIND, job_id))
    stored: dict[str, str] = {}
    try:
        for part, frame in parts.items():
            key = _object_key(job_id, part)
            store.put_bytes(
                key, encrypt(data_key, _parquet(frame), owner_context(KIND, job_id, key))
            )
            stored[part] = key
        return create_job(
            db, prompt, schema, DRAFTER, id=job_id, owner=owner,
            sample={**sample, "objects": stored, "deleted": False}, wrapped_key=wrapped,
            **columns,
        )  # fmt: skip
    except BaseException:
        store.delete_many(list(stored.values()))
        raise


def fetch_sample(spec: str, max_bytes: int, *, s3_client: Any = None) -> tuple[bytes | Path, str]:
    """(data, file name) of the sample at `spec`: a path on this machine, or s3://bucket/key
    (its size is checked before it is downloaded). SampleError or StorageError naming it."""
    from synth_pipelines.core.errors import StorageError
    from synth_pipelines.core.tabular.fitted.sample_io import SampleError

    spec = spec.strip()
    if not spec.startswith("s3://"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SampleError("sample", f"the sample {spec!r} is not a file on this machine")
        return path, path.name
    bucket, _, key = spec[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise SampleError("sample", f"{spec!r} names no object: use s3://bucket/path/sample.csv")
    from botocore.exceptions import BotoCoreError, ClientError

    if s3_client is None:
        from synth_pipelines.core.storage.s3_object_store import s3_client_from_env

        s3_client = s3_client_from_env()
    try:
        size = s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size > max_bytes:
            raise SampleError(
                "sample", f"{spec} is {size:,} bytes, over the limit of {max_bytes:,}"
            )
        data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NoSuchBucket"):
            raise SampleError("sample", f"the sample {spec} does not exist") from None
        raise StorageError(f"cannot read the sample {spec}: {error}") from None
    except BotoCoreError as error:
        raise StorageError(f"cannot reach the sample {spec}: {error}") from None
    return data, key.rsplit("/", 1)[-1]


def public_sample(sample: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a job's view shows of its sample: no object keys."""
    if sample is None:
        return None
    return {name: value for name, value in sample.items() if name != "objects"}


def is_fitted(job: TabularJob) -> bool:
    return job.sample is not None


def load_sample(
    store: ObjectStore, keys: KeyWrapper, job: TabularJob
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(train, holdout) of a fitted job, decrypted; None once the sample was deleted."""
    parts = load_parts(store, keys, job)
    return None if parts is None else (parts["train"], parts["holdout"])


def load_parts(
    store: ObjectStore, keys: KeyWrapper, job: TabularJob
) -> dict[str, pd.DataFrame] | None:
    """Every stored part of a fitted job's sample, decrypted; None once it was deleted."""
    if job.sample is None or job.sample.get("deleted") or job.wrapped_key is None:
        return None
    data_key = keys.unwrap(job.wrapped_key, owner_context(KIND, job.id))
    frames = {}
    for part, key in job.sample["objects"].items():
        plain = decrypt(data_key, store.get_bytes(key), owner_context(KIND, job.id, key))
        frames[part] = pq.read_table(pa.BufferReader(plain)).to_pandas()
    return frames


def delete_sample(db: FactoryDatabase, store: ObjectStore, job_id: str) -> dict[str, Any]:
    """Delete a fitted job's sample objects and forget its data key; the job's `sample` record
    says so (the file name and row counts stay)."""
    job = get_job(db, job_id)
    if job.sample is None or job.sample.get("deleted"):
        return job.sample or {}
    store.delete_many(list(job.sample["objects"].values()))
    with db.session() as session:
        row = session.get(TabularJob, job_id)
        row.sample = {**row.sample, "deleted": True}
        row.wrapped_key = None
        return dict(row.sample)
