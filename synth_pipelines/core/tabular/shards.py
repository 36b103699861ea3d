"""A tabular job's chunks split into shards that run as steps of their own (on different Celery
workers with SYNTH_EXECUTOR=celery), each generating a contiguous range of the job's chunks into
one Parquet file in the object store; the job's last step reads them back in chunk order and
deduplicates, tops up and writes as a job run in one step does.

A chunk is seeded by its index alone, so a sharded job's rows are the rows the same job makes in
one step, byte for byte, whatever the number of shards or the workers they ran on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.dedup import Keys, table_keys
from synth_pipelines.core.tabular.generator import generate_table
from synth_pipelines.core.tabular.jobs import JobParams
from synth_pipelines.core.tabular.schema import TableSchema


@dataclass(frozen=True)
class Shard:
    """Chunks `first_chunk` … `first_chunk + chunks - 1` of job `job_id`'s run `run_id`."""

    job_id: str
    run_id: str
    index: int
    first_chunk: int
    chunks: int

    @property
    def key(self) -> str:
        """Where the shard's rows go: under the run, so a retry never reads an older run's."""
        return f"tabular/{self.job_id}/shards/{self.run_id}/{self.index:05d}.parquet"

    def rows(self, params: JobParams) -> int:
        """Its rows: whole chunks, but for the job's last chunk, which holds what is left."""
        end = min((self.first_chunk + self.chunks) * params.chunk_size, params.total_rows)
        return end - self.first_chunk * params.chunk_size

    def to_dict(self) -> dict:
        return asdict(self)


def plan_shards(job_id: str, run_id: str, params: JobParams, shards: int) -> list[Shard]:
    """At most `shards` contiguous ranges of the job's chunks, as even as whole chunks allow (a
    job of fewer chunks gets one shard per chunk)."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    total = params.total_chunks
    count = min(shards, total)
    plan, first = [], 0
    for index in range(count):
        chunks = total // count + (1 if index < total % count else 0)
        plan.append(Shard(job_id, run_id, index, first, chunks))
        first += chunks
    return plan


def generate_shard(
    schema: TableSchema,
    params: JobParams,
    shard: Shard,
    store: ObjectStore,
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Generate the shard's chunks (in parallel processes, `params.max_workers`) into one Parquet
    file at `shard.key`, a row group per chunk; its rows and chunks. `on_chunk(index, rows)` as
    each chunk is made."""
    rows = shard.rows(params)
    writer: pq.ParquetWriter | None = None
    with store.open_writer(shard.key, "application/vnd.apache.parquet") as sink:
        try:
            for _index, table in generate_table(
                schema,
                total_rows=rows,
                chunk_size=params.chunk_size,
                seed=params.seed,
                max_workers=params.max_workers,
                start_chunk=shard.first_chunk,
                on_chunk=on_chunk,
            ):
                if writer is None:
                    writer = pq.ParquetWriter(sink, table.schema, compression="lz4")
                writer.write_table(table, row_group_size=max(table.num_rows, 1))
        finally:
            if writer is not None:
                writer.close()
    return {"rows": rows, "chunks": shard.chunks}


def shard_chunks(store: ObjectStore, shards: list[Shard]) -> Iterator[tuple[int, pa.Table, Keys]]:
    """The chunks of `shards`, in chunk order, each with its dedup keys: what
    `generate_keyed_table` yields for the same job in one step."""
    for shard in sorted(shards, key=lambda s: s.first_chunk):
        file = pq.ParquetFile(io.BytesIO(store.get_bytes(shard.key)))
        for group in range(file.num_row_groups):
            table = file.read_row_group(group)
            yield shard.first_chunk + group, table, table_keys(table)


def delete_shards(store: ObjectStore, shards: list[Shard]) -> None:
    """The shards' files, once the job's output is written (or its run failed)."""
    store.delete_many(shard.key for shard in shards)
