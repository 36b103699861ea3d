"""The checks of a table generated from a fitted model, against the sample it was fitted to.

- `fitted_quality` (warns): sdmetrics' quality report (column shapes, column pair trends, the
  overall score, at least SYNTH_TABULAR_MIN_QUALITY), its diagnostic report and ML utility
  (train on synthetic, test on the real holdout, against train on real), all in the metadata.
- `fitted_dcr_share` (blocks): the share of synthetic rows closer to a training row than to any
  holdout row, at most SYNTH_TABULAR_MAX_DCR_SHARE (0.52: a model that generalises sits near
  0.5; one that memorises its sample near 1); NNDR reported beside it.
- `fitted_identical_matches` (blocks): the share of synthetic rows equal to a training row,
  at most SYNTH_TABULAR_MAX_IDENTICAL_SHARE (0).
- `fitted_foreign_keys` (blocks): a job fitted to several tables joined by keys: no foreign key
  value references a parent row that was not generated (skipped for one table). The other
  checks of such a job are judged per table and fail when they fail on any table
  (`merge_outcomes`).

A prompt-drafted job has no sample: each check is skipped, with that reason. A fitted job whose
sample was deleted after its first checked run (SYNTH_TABULAR_SAMPLE_RETENTION=delete) is
skipped too, and its earlier reports stay on the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from synth_pipelines.core.checks.names import (
    FITTED_DCR,
    FITTED_IDENTICAL,
    FITTED_KEYS,
    FITTED_QUALITY,
)
from synth_pipelines.core.checks.outcome import ERROR, SKIP_PREFIX, WARN, CheckOutcome
from synth_pipelines.core.tabular.schema import TableSchema

CHECKS = {
    FITTED_QUALITY: "quality of the table against its sample (sdmetrics), and ML utility",
    FITTED_DCR: "privacy: share of rows closer to the training sample than to its holdout",
    FITTED_IDENTICAL: "privacy: share of rows identical to a row of the training sample",
    FITTED_KEYS: "tables joined by keys: every foreign key value is a generated parent key",
}
SEVERITY = {FITTED_QUALITY: WARN, FITTED_DCR: ERROR, FITTED_IDENTICAL: ERROR, FITTED_KEYS: ERROR}
CHECKED_ROWS = 1_000_000  # synthetic rows the checks read (a seeded sample of larger tables)
NOT_FITTED = "not a fitted job: drafted from a prompt, it has no real sample to compare with"
ONE_TABLE = "one table: no foreign keys to check (a job fitted to several samples has them)"
SAMPLE_DELETED = (
    "the job's sample was deleted after its first checked run "
    "(SYNTH_TABULAR_SAMPLE_RETENTION=delete); the reports of that run stay on the job"
)


@dataclass(frozen=True)
class FittedReports:
    """The check outcomes, the reports as JSON for the job, and the report's files."""

    outcomes: list[CheckOutcome]
    reports: dict[str, Any] = field(default_factory=dict)
    html: Path | None = None
    images: dict[str, bytes] = field(default_factory=dict)


def skipped(reason: str) -> FittedReports:
    return FittedReports([CheckOutcome.skip(name, reason) for name in CHECKS])


def merge_outcomes(per_table: dict[str, list[CheckOutcome]]) -> list[CheckOutcome]:
    """One outcome per check over several tables: it fails when it fails on any table (its
    description names the tables, failures first), is skipped when every table skipped it,
    and its metadata holds each table's."""
    by_name: dict[str, dict[str, CheckOutcome]] = {}
    for table, outcomes in per_table.items():
        for outcome in outcomes:
            by_name.setdefault(outcome.name, {})[table] = outcome
    merged = []
    for name, outcomes in by_name.items():
        looked = {t: o for t, o in outcomes.items() if not o.skipped}
        if not looked:
            reasons = "; ".join(f"{t}: {o.description}" for t, o in outcomes.items())
            merged.append(CheckOutcome.skip(name, reasons.replace(SKIP_PREFIX, "")))
            continue
        failed = [t for t, o in looked.items() if not o.passed]
        shown = failed + [t for t in looked if t not in failed]
        merged.append(
            CheckOutcome(
                name,
                passed=not failed,
                description="; ".join(f"{t}: {looked[t].description}" for t in shown),
                severity=ERROR if any(o.severity == ERROR for o in looked.values()) else WARN,
                metadata={
                    "failed_tables": failed,
                    **{t: o.metadata for t, o in outcomes.items()},
                },
            )
        )
    return merged


def fitted_checks(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    table: pa.Table,
    schema: TableSchema,
    *,
    max_dcr_share: float,
    max_identical_share: float,
    min_quality: float,
    report_dir: Path,
) -> FittedReports:
    """Judge `table` (generated from `schema.fitted`) against the sample it was fitted to:
    `train` (what the fit saw) and `holdout` (what it never saw)."""
    from synth_pipelines.core.tabular.fitted.metrics import (
        PrivacyThresholds,
        diagnostic_report,
        ml_utility,
        privacy_report,
        privacy_verdict,
        quality_report,
    )
    from synth_pipelines.core.tabular.fitted.report_html import report_images, write_report

    synthetic = _at_most(table, CHECKED_ROWS).to_pandas()
    quality = quality_report(train, synthetic, schema)
    diagnostic = diagnostic_report(train, synthetic, schema)
    utility = ml_utility(train, holdout, synthetic, target=None)
    privacy = privacy_report(train, holdout, synthetic, schema)
    thresholds = PrivacyThresholds(
        dcr_share_max=max_dcr_share, identical_match_max=max_identical_share
    )
    failures = privacy_verdict(privacy, thresholds)
    reports = {
        "quality": quality,
        "diagnostic": diagnostic,
        "ml_utility": utility,
        "privacy": privacy,
        "thresholds": thresholds.model_dump(),
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    html = write_report(
        report_dir / "report.html", train, synthetic, quality, privacy, utility,
        schema=schema, diagnostic=diagnostic, verdict=failures, title=f"{schema.name}: report",
    )  # fmt: skip
    images = report_images(train, synthetic, quality, schema=schema, ml=utility,
                           diagnostic=diagnostic)  # fmt: skip
    dcr, identical = privacy["dcr_share"], privacy["identical_match_share"]
    outcomes = [
        CheckOutcome(
            FITTED_QUALITY,
            passed=(quality["score"] or 0.0) >= min_quality,
            description=(
                f"quality score {_percent(quality['score'])} (column shapes "
                f"{_percent(quality['column_shapes'])}, pair trends "
                f"{_percent(quality['column_pair_trends'])}; at least {min_quality:.0%}), "
                f"diagnostic {_percent(diagnostic.get('score'))}"
            ),
            severity=WARN,
            metadata={
                "quality_score": quality["score"],
                "min_quality": min_quality,
                "column_shapes": quality["column_shapes"],
                "column_pair_trends": quality["column_pair_trends"],
                "diagnostic": diagnostic,
                "ml_utility": utility,
            },
        ),
        CheckOutcome(
            FITTED_DCR,
            passed=dcr <= max_dcr_share,
            description=(
                f"DCR share {dcr:.1%} of synthetic rows closer to the training sample than to the "
                f"holdout (at most {max_dcr_share:.0%})"
            ),
            metadata={
                "dcr_share": dcr,
                "max_dcr_share": max_dcr_share,
                "nndr": privacy.get("nndr"),
                "rows_compared": privacy.get("rows_compared"),
            },
        ),
        CheckOutcome(
            FITTED_IDENTICAL,
            passed=identical <= max_identical_share,
            description=(
                f"{identical:.2%} of synthetic rows identical to a training row (at most "
                f"{max_identical_share:.2%})"
            ),
            metadata={
                "identical_match_share": identical,
                "max_identical_share": max_identical_share,
                "rows_compared": privacy.get("rows_compared"),
            },
        ),
    ]
    if failures:
        reports["privacy_failures"] = failures
    return FittedReports(outcomes, reports, html, images)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _at_most(table: pa.Table, rows: int, seed: int = 0) -> pa.Table:
    """`table`, or a seeded sample of `rows` of its rows (in order, as `frames.cap_rows` picks
    them) when it is larger: the reports subsample further themselves; identical matches are
    counted on all of these."""
    from synth_pipelines.core.tabular.fitted.frames import capped_positions

    keep = capped_positions(table.num_rows, rows, seed)
    return table if keep is None else table.take(pa.array(keep))
