"""Several samples joined by keys, fitted and generated together: the one code path of a
multi-table job (`POST /tabular/jobs` with several files and keys, the tabular_dataset asset)
and of `synth tabular fit-tables --out DIR` on this machine.

    read each sample (SampleError naming the table.column)       read_tables
      -> the keys: "orders.customer_id=customers.customer_id"     parse_keys
         (child.column=parent.column), checked on the whole samples: a key naming no table or
         column, a parent key that is not unique, a value that references nothing, a cycle
      -> a holdout: a share of each root table's rows, and below them the rows that belong to
         held-out parents (a child follows its parent), never seen by the fit
      -> fit the tables together (`multitable.fit_tables`)         fit_samples
      -> sample them (`sample_tables`), then per table the fitted job's checks (quality, DCR
         share, identical matches) against its own training part and holdout, and the
         referential integrity of every key                       judge_tables
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth_pipelines.core.checks.names import FITTED_DCR, FITTED_IDENTICAL, FITTED_KEYS
from synth_pipelines.core.checks.outcome import CheckOutcome
from synth_pipelines.core.tabular.fitted.checks import FittedReports
from synth_pipelines.core.tabular.fitted.jobs import table_name
from synth_pipelines.core.tabular.fitted.metrics import split_holdout
from synth_pipelines.core.tabular.fitted.multitable import (
    FittedTables,
    Relation,
    check_relations,
    fit_tables,
    normalised,
    sample_tables,
)
from synth_pipelines.core.tabular.fitted.sample_io import SampleError, read_sample

_KEY = re.compile(r"^\s*(\w+)\.(\w+)\s*=\s*(\w+)\.(\w+)\s*$")


def parse_keys(specs: list[str]) -> list[Relation]:
    """ "child.column=parent.column" each; SampleError naming the one that does not parse."""
    if not specs:
        raise SampleError(
            "key",
            "key is required: the samples are joined by keys, child.column=parent.column "
            "(e.g. orders.customer_id=customers.customer_id)",
        )
    relations = []
    for spec in specs:
        match = _KEY.match(spec)
        if match is None:
            raise SampleError(
                "key",
                f"key {spec!r} is not child.column=parent.column "
                "(e.g. orders.customer_id=customers.customer_id)",
            )
        child, child_key, parent, parent_key = match.groups()
        relations.append(Relation(parent=parent, parent_key=parent_key, child=child,
                                  child_key=child_key))  # fmt: skip
    return relations


def key_spec(relation: Relation) -> str:
    return f"{relation.child}.{relation.child_key}={relation.parent}.{relation.parent_key}"


def read_tables(
    files: list[tuple[bytes | Path, str]], *, max_bytes: int
) -> dict[str, pd.DataFrame]:
    """Each (data, file name) read as the table named after its file; a bad sample is a
    SampleError naming the table (and column), two files of one table name are refused."""
    tables: dict[str, pd.DataFrame] = {}
    for data, filename in files:
        name = table_name(filename)
        if name in tables:
            raise SampleError(name, f"two samples are both table {name!r} ({filename}): rename one")
        try:
            tables[name] = read_sample(data, filename=filename, max_bytes=max_bytes)
        except SampleError as exc:
            column = exc.field.removeprefix("sample").lstrip(".")
            raise SampleError(
                f"{name}.{column}" if column else name, f"table {name} ({filename}): {exc}"
            ) from None
    return tables


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


@dataclass(frozen=True)
class RelatedFit:
    """What a multi-table job keeps: the relations, each table's training part and holdout
    (stored encrypted), and the model fitted to the training parts (no raw rows)."""

    relations: list[Relation]
    train: dict[str, pd.DataFrame]
    holdout: dict[str, pd.DataFrame]
    fitted: FittedTables


def fit_samples(
    tables: dict[str, pd.DataFrame],
    keys: list[str],
    *,
    holdout_share: float,
    seed: int,
    min_category_count: int,
) -> RelatedFit:
    """Check `keys` on the whole samples, split off the holdout, fit the training parts."""
    relations = parse_keys(keys)
    tables = normalised(tables)
    check_relations(tables, relations)
    train, holdout = split_related(tables, relations, holdout_share, seed)
    fitted = fit_tables(train, relations, seed=seed, min_category_count=min_category_count)
    return RelatedFit(relations, train, holdout, fitted)


@dataclass
class TableResult:
    """One generated table, judged: its fitted checks and the orphans of its foreign keys."""

    name: str
    table: pa.Table
    judged: FittedReports
    orphans: dict[str, int]  # key spec -> foreign key values that reference no generated parent

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def quality(self) -> float | None:
        return self.judged.reports["quality"]["score"]

    @property
    def dcr_share(self) -> float:
        return self.judged.reports["privacy"]["dcr_share"]

    @property
    def identical_share(self) -> float:
        return self.judged.reports["privacy"]["identical_match_share"]

    @property
    def failures(self) -> list[str]:
        """Why this table may not be delivered: a privacy check, or a key, failed."""
        privacy = [
            o.description
            for o in self.judged.outcomes
            if o.name in (FITTED_DCR, FITTED_IDENTICAL) and not o.passed
        ]
        keys = [
            f"{n} value(s) of {spec} reference no parent row"
            for spec, n in self.orphans.items()
            if n
        ]
        return privacy + keys


def judge_tables(
    related: RelatedFit,
    generated: dict[str, pa.Table],
    *,
    max_dcr_share: float,
    max_identical_share: float,
    min_quality: float,
    report_dir: Path,
) -> list[TableResult]:
    """Every generated table judged as a fitted job's table is (`checks.fitted_checks` against
    its own training part and holdout), plus the orphans of its keys; parents first. Each
    table's HTML report is `report_dir/<table>/report.html`."""
    from synth_pipelines.core.tabular.fitted.checks import fitted_checks

    orphans = orphans_of(related.relations, generated)
    results = []
    for name in related.fitted.order:
        table = generated[name]
        judged = fitted_checks(
            related.train[name], related.holdout[name], table, related.fitted.tables[name],
            max_dcr_share=max_dcr_share, max_identical_share=max_identical_share,
            min_quality=min_quality, report_dir=report_dir / name,
        )  # fmt: skip
        results.append(TableResult(name, table, judged, orphans[name]))
    return results


def orphans_of(
    relations: list[Relation], generated: dict[str, pa.Table]
) -> dict[str, dict[str, int]]:
    """Per table, per key of it: the foreign key values that reference no generated parent."""
    return {
        name: {
            key_spec(r): _orphans(table, r, generated[r.parent])
            for r in relations
            if r.child == name
        }
        for name, table in generated.items()
    }


def keys_outcome(table: str, orphans: dict[str, int]) -> CheckOutcome:
    """Referential integrity of `table`'s foreign keys (skipped for a table without one)."""
    if not orphans:
        return CheckOutcome.skip(FITTED_KEYS, f"{table} has no foreign key")
    return CheckOutcome(
        FITTED_KEYS,
        passed=not any(orphans.values()),
        description="; ".join(f"{spec}: {n} orphan value(s)" for spec, n in orphans.items()),
        metadata={"orphans": orphans},
    )


def fit_related(
    paths: list[Path],
    keys: list[str],
    *,
    rows: int,
    out_dir: Path,
    seed: int = 0,
    max_bytes: int,
    holdout_share: float,
    min_category_count: int,
    max_dcr_share: float,
    max_identical_share: float,
    min_quality: float,
) -> list[TableResult]:
    """`synth tabular fit-tables --out`: fit the samples at `paths` joined by `keys`, generate
    `rows` rows of each root table (and their children), judge every table, and publish the
    Parquet files and reports to `out_dir` only when no table failed its privacy checks or a
    key. SampleError for a bad sample or key."""
    tables = read_tables([(path, path.name) for path in paths], max_bytes=max_bytes)
    related = fit_samples(
        tables, keys, holdout_share=holdout_share, seed=seed,
        min_category_count=min_category_count,
    )  # fmt: skip
    generated = sample_tables(related.fitted, rows=rows, seed=seed)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        results = judge_tables(
            related, generated, max_dcr_share=max_dcr_share,
            max_identical_share=max_identical_share, min_quality=min_quality,
            report_dir=staging / ".reports",
        )  # fmt: skip
        for result in results:
            pq.write_table(result.table, staging / f"{result.name}.parquet", compression="zstd")
            if result.judged.html is not None:
                result.judged.html.replace(staging / f"{result.name}_report.html")
        shutil.rmtree(staging / ".reports", ignore_errors=True)
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
