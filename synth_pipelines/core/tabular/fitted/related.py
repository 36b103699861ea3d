"""Several samples joined by keys, fitted and generated together: what `synth tabular fit-tables`
runs on this machine.

    read each sample (SampleError naming the file's column)
      -> the keys: "orders.customer_id=customers.customer_id" (child.column=parent.column)
      -> a holdout: a share of each root table's rows, and below them the rows that belong to
         held-out parents (a child follows its parent), never seen by the fit
      -> fit the tables together (`multitable.fit_tables`), sample them (`sample_tables`)
      -> per table: the fitted job's checks (quality, DCR share, identical matches) against
         its own training part and holdout, and the referential integrity of every key
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
    holdout_share: float,
    max_dcr_share: float,
    max_identical_share: float,
    min_quality: float,
) -> list[TableResult]:
    """Fit the samples at `paths` joined by `keys`, generate `rows` rows of each root table (and
    their children), judge every table as a fitted job's table is judged (`checks.fitted_checks`)
    plus its keys, and publish the Parquet files and reports to `out_dir` only when every table
    is within the privacy limits. SampleError for a bad sample or key."""
    from synth_pipelines.core.checks.names import FITTED_DCR, FITTED_IDENTICAL
    from synth_pipelines.core.tabular.fitted.checks import fitted_checks

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
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    results = []
    try:
        for name in fitted.order:
            table = generated[name]
            judged = fitted_checks(
                train[name], holdout[name], table, fitted.tables[name],
                max_dcr_share=max_dcr_share, max_identical_share=max_identical_share,
                min_quality=min_quality, report_dir=staging / f".{name}",
            )  # fmt: skip
            failures = [
                o.description for o in judged.outcomes
                if o.name in (FITTED_DCR, FITTED_IDENTICAL) and not o.passed
            ]  # fmt: skip
            orphans = sum(
                _orphans(table, relation, generated[relation.parent])
                for relation in relations
                if relation.child == name
            )
            if orphans:
                failures.append(f"{orphans} foreign key value(s) reference no parent row")
            pq.write_table(table, staging / f"{name}.parquet", compression="zstd")
            if judged.html is not None:
                judged.html.replace(staging / f"{name}_report.html")
            shutil.rmtree(staging / f".{name}", ignore_errors=True)
            quality, privacy = judged.reports["quality"], judged.reports["privacy"]
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
