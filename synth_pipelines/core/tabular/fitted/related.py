"""Several samples joined by keys, fitted and generated together: what `synth tabular fit-tables`
runs on this machine.

    read each sample (SampleError naming the file's column)
      -> the keys: "orders.customer_id=customers.customer_id" (child.column=parent.column)
      -> a holdout: a share of each root table's rows, and below them the rows that belong to
         held-out parents (a child follows its parent), never seen by the fit
      -> fit the tables together (`multitable.fit_tables`), sample them (`sample_tables`)
      -> per table: quality and privacy against its own training part and holdout, and the
         referential integrity of every key
      -> Parquet per table and an HTML report per table, published into the output folder
         only when every table passed its privacy limits (nothing half-written otherwise)
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth_pipelines.core.tabular.fitted.jobs import table_name
from synth_pipelines.core.tabular.fitted.metrics import split_holdout
from synth_pipelines.core.tabular.fitted.multitable import Relation, fit_tables, sample_tables
from synth_pipelines.core.tabular.fitted.sample_io import SampleError, read_sample

_KEY = re.compile(r"^\s*(\w+)\.(\w+)\s*=\s*(\w+)\.(\w+)\s*$")


def parse_keys(specs: list[str]) -> list[Relation]:
    """ "child.column=parent.column" each; SampleError naming the one that does not parse."""
    relations = []
    for spec in specs:
        match = _KEY.match(spec)
        if match is None:
            raise SampleError(
                "relations",
                f"key {spec!r} is not child.column=parent.column "
                "(e.g. orders.customer_id=customers.customer_id)",
            )
        child, child_key, parent, parent_key = match.groups()
        relations.append(Relation(parent=parent, parent_key=parent_key, child=child,
                                  child_key=child_key))  # fmt: skip
    return relations


def split_related(
    tables: dict[str, pd.DataFrame], relations: list[Relation], share: float, seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(train, holdout) of every table: roots split at random, every other table by its first
    parent's split, so that both sides keep their keys whole."""
    parents = {}
    for relation in relations:
        parents.setdefault(relation.child, relation)
    train: dict[str, pd.DataFrame] = {}
    holdout: dict[str, pd.DataFrame] = {}
    pending = list(tables)
    while pending:
        name = next(
            (n for n in pending if n not in parents or parents[n].parent in train), pending[0]
        )
        pending.remove(name)
        frame = tables[name]
        relation = parents.get(name)
        if relation is None or relation.parent not in train:
            train[name], holdout[name] = split_holdout(frame, share=share, seed=seed)
            continue
        held_keys = set(holdout[relation.parent][relation.parent_key])
        held = frame[relation.child_key].isin(held_keys)
        train[name], holdout[name] = frame[~held], frame[held]
    return (
        {n: f.reset_index(drop=True) for n, f in train.items()},
        {n: f.reset_index(drop=True) for n, f in holdout.items()},
    )


@dataclass
class TableResult:
    name: str
    rows: int
    quality: float | None
    dcr_share: float
    identical_share: float
    orphans: int  # foreign key values of this table that reference no generated parent key
    failures: list[str] = field(default_factory=list)


def fit_related(
    paths: list[Path],
    keys: list[str],
    *,
    rows: int,
    out_dir: Path,
    seed: int = 0,
    max_bytes: int,
    holdout_share: float = 0.5,
    max_dcr_share: float = 0.52,
    max_identical_share: float = 0.0,
) -> list[TableResult]:
    """Fit the samples at `paths` joined by `keys`, generate `rows` rows of each root table (and
    their children), judge every table, and publish the Parquet files and reports to `out_dir`
    only when every table is within the privacy limits. SampleError for a bad sample or key."""
    from synth_pipelines.core.tabular.fitted.metrics import quality_report
    from synth_pipelines.core.tabular.fitted.privacy import (
        PrivacyThresholds,
        privacy_report,
        privacy_verdict,
    )
    from synth_pipelines.core.tabular.fitted.report_html import write_report

    tables: dict[str, pd.DataFrame] = {}
    for path in paths:
        name = table_name(path.name)
        if name in tables:
            raise SampleError("sample", f"two samples are both named {name!r}: rename one")
        tables[name] = read_sample(path, filename=path.name, max_bytes=max_bytes)
    relations = parse_keys(keys)
    train, holdout = split_related(tables, relations, holdout_share, seed)
    fitted = fit_tables(train, relations, seed=seed)
    generated = sample_tables(fitted, rows=rows, seed=seed)
    thresholds = PrivacyThresholds(
        dcr_share_max=max_dcr_share, identical_match_max=max_identical_share
    )
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    results = []
    try:
        for name in fitted.order:
            table, schema = generated[name], fitted.tables[name]
            synthetic = table.to_pandas()
            quality = quality_report(train[name], synthetic, schema)
            privacy = privacy_report(train[name], holdout[name], synthetic, schema)
            failures = privacy_verdict(privacy, thresholds)
            orphans = sum(
                _orphans(table, relation, generated[relation.parent])
                for relation in relations
                if relation.child == name
            )
            if orphans:
                failures.append(f"{orphans} foreign key value(s) reference no parent row")
            pq.write_table(table, staging / f"{name}.parquet", compression="zstd")
            write_report(staging / f"{name}_report.html", train[name], synthetic, quality,
                         privacy, None, schema=schema, verdict=failures,
                         title=f"{name}: report")  # fmt: skip
            results.append(
                TableResult(name, table.num_rows, quality["score"], privacy["dcr_share"],
                            privacy["identical_match_share"], orphans, failures)
            )  # fmt: skip
        if all(not r.failures for r in results):
            shutil.rmtree(out_dir, ignore_errors=True)
            staging.replace(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def _orphans(child: pa.Table, relation: Relation, parent: pa.Table) -> int:
    keys = child.column(relation.child_key).drop_null()
    known = pc.is_in(keys, value_set=parent.column(relation.parent_key).combine_chunks())
    return int(len(keys) - (pc.sum(known).as_py() or 0)) if len(keys) else 0
