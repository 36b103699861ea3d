"""Privacy of a fitted table, measured against a holdout the fit never saw.

- DCR share: the share of synthetic rows strictly closer to their nearest training row than to
  their nearest holdout row. A model that learnt the distribution, not the rows, lands near 50%
  (train and holdout are equal in size); one that copies its sample lands near 100%.
- Identical-match share: synthetic rows equal to a training row on every compared column.
- NNDR: nearest / second-nearest training distance per synthetic row (near 0: the row sits on
  one training record), as p5 / p50 / p95.

Compared columns: the modelled ones (numbers, datetimes, categories, booleans), not ids, PII or
free text (generated, never fitted). Distances are Euclidean on a mixed encoding: numbers and
datetimes scaled by the real range, categories one-hot (a mismatch costs as much as a full-range
difference), a null its own value. The nearest-neighbour search (scikit-learn) runs on blocks of
synthetic rows so memory stays bounded (`block_rows`), on at most `max_rows` rows of each frame.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.fitted.frames import (
    MODELLED,
    as_float,
    canonical,
    cap_rows,
    json_number,
    sdtypes_for,
    shared_columns,
)
from synth_pipelines.core.tabular.schema import TableSchema

PRIVACY_MAX_ROWS = 50_000
BLOCK_ROWS = 8192
MAX_CATEGORIES = 64  # per column; rarer values share one "other" slot


class PrivacyThresholds(BaseModel):
    """When the privacy checks fail. Each is a setting; None switches a check off."""

    model_config = ConfigDict(extra="forbid")

    dcr_share_max: float = Field(
        default=0.52, ge=0.0, le=1.0, description="most synthetic rows closer to train than holdout"
    )
    identical_match_max: float = Field(
        default=0.0, ge=0.0, le=1.0, description="most synthetic rows copying a training row"
    )
    nndr_p5_min: float | None = Field(
        default=None, ge=0.0, le=1.0, description="least 5th-percentile NNDR (off by default)"
    )


def privacy_report(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema | None = None,
    *,
    max_rows: int = PRIVACY_MAX_ROWS,
    seed: int = 0,
    block_rows: int = BLOCK_ROWS,
    threads: int = 1,
) -> dict[str, Any]:
    """DCR share, identical matches and NNDR of `synthetic` against `train` (what the fit saw)
    and `holdout` (what it did not).

    Returns {dcr_share, dcr_tie_share (rows as close to both), identical_match_share,
    identical_matches, identical_match_share_holdout (the same against holdout: the baseline
    chance), dcr: {train: {p5, p50}, holdout: {p5, p50}}, nndr: {p5, p50, p95},
    rows_compared: {synthetic, train, holdout} (the nearest-neighbour search; train and holdout
    cut to the same size), rows_matched (synthetic rows checked for identical matches: all),
    columns_compared, max_rows, seconds}. `threads` caps the BLAS/OpenMP threads of the search
    (spinning threads on a busy machine are far slower than one)."""
    started = time.perf_counter()
    sdtypes = sdtypes_for(train, schema)
    names = [
        name
        for name in shared_columns(train, synthetic)
        if name in holdout.columns and sdtypes.get(name) in MODELLED
    ]
    if not names:
        raise FieldError(
            "schema", "no modelled column (number, date, category, boolean) to compare for privacy"
        )
    kinds = {name: sdtypes[name] for name in names}
    train_all = canonical(train, kinds)
    holdout_all = canonical(holdout, kinds)
    synthetic_all = canonical(synthetic, kinds)

    train_keys = _row_keys(train_all)
    synthetic_keys = _row_keys(synthetic_all)
    identical = np.isin(synthetic_keys, train_keys)
    identical_holdout = np.isin(synthetic_keys, _row_keys(holdout_all))

    size = min(len(train_all), len(holdout_all), max_rows)
    train_part = cap_rows(train_all, size, seed)
    holdout_part = cap_rows(holdout_all, size, seed + 1)
    synthetic_part = cap_rows(synthetic_all, max_rows, seed + 2)
    encoder = _MixedEncoder(pd.concat([train_part, holdout_part]), kinds)
    queries = encoder(synthetic_part)
    with threadpool_limits(limits=threads):
        to_train = _two_nearest(queries, encoder(train_part), block_rows)
        to_holdout = _two_nearest(queries, encoder(holdout_part), block_rows)[:, 0]
    nearest, second = to_train[:, 0], to_train[:, 1]
    nndr = np.divide(nearest, second, out=np.zeros_like(nearest), where=second > 0)
    return {
        "dcr_share": json_number(np.mean(nearest < to_holdout)),
        "dcr_tie_share": json_number(np.mean(nearest == to_holdout)),
        "identical_match_share": json_number(identical.mean()),
        "identical_matches": int(identical.sum()),
        "identical_match_share_holdout": json_number(identical_holdout.mean()),
        "dcr": {
            "train": _quantiles(nearest, (5, 50)),
            "holdout": _quantiles(to_holdout, (5, 50)),
        },
        "nndr": _quantiles(nndr, (5, 50, 95)),
        "rows_compared": {
            "synthetic": len(synthetic_part),
            "train": len(train_part),
            "holdout": len(holdout_part),
        },
        "rows_matched": len(synthetic_all),
        "columns_compared": names,
        "max_rows": max_rows,
        "seconds": round(time.perf_counter() - started, 3),
    }


def privacy_verdict(report: dict[str, Any], thresholds: PrivacyThresholds) -> list[str]:
    """Why the privacy report fails the thresholds, one sentence each; empty when it passes."""
    reasons: list[str] = []
    dcr = report["dcr_share"]
    if thresholds.dcr_share_max is not None and dcr is not None and dcr > thresholds.dcr_share_max:
        reasons.append(
            f"DCR share {dcr:.1%} is over {thresholds.dcr_share_max:.0%}: that many synthetic "
            "rows are closer to a training row than to any holdout row (about 50% when the model "
            "learnt the distribution, not the rows)"
        )
    share = report["identical_match_share"]
    if thresholds.identical_match_max is not None and share > thresholds.identical_match_max:
        reasons.append(
            f"{report['identical_matches']} synthetic rows ({share:.2%}) copy a training row on "
            f"every compared column (at most {thresholds.identical_match_max:.2%} allowed)"
        )
    p5 = report["nndr"]["p5"]
    if thresholds.nndr_p5_min is not None and p5 is not None and p5 < thresholds.nndr_p5_min:
        reasons.append(
            f"5th-percentile NNDR {p5:.3f} is under {thresholds.nndr_p5_min:.3f}: some synthetic "
            "rows sit on a single training row"
        )
    return reasons


class _MixedEncoder:
    """Rows as float vectors: numbers and datetimes scaled by the range of the reference rows
    (a null is 0 with a null flag of 1), categories one-hot scaled by 1/sqrt(2) so a mismatch
    adds 1 to the squared distance, as a full-range numeric difference does."""

    def __init__(self, reference: pd.DataFrame, kinds: dict[str, str]):
        self.kinds = kinds
        self.ranges: dict[str, tuple[float, float]] = {}
        self.categories: dict[str, pd.Index] = {}
        for name, kind in kinds.items():
            if kind in ("numerical", "datetime"):
                values = as_float(reference[name])
                finite = values[np.isfinite(values)]
                low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
                self.ranges[name] = (float(low), float(high - low) or 1.0)
            else:
                counts = reference[name].astype(object).map(repr).value_counts()
                self.categories[name] = pd.Index(counts.index[:MAX_CATEGORIES])

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        parts: list[np.ndarray] = []
        for name, kind in self.kinds.items():
            if kind in ("numerical", "datetime"):
                values = as_float(frame[name])
                low, span = self.ranges[name]
                missing = ~np.isfinite(values)
                parts.append(np.where(missing, 0.0, (values - low) / span))
                parts.append(missing.astype(float))
            else:
                known = self.categories[name]
                codes = known.get_indexer(frame[name].astype(object).map(repr))
                codes = np.where(codes < 0, len(known), codes)  # unseen: the "other" slot
                onehot = np.zeros((len(frame), len(known) + 1))
                onehot[np.arange(len(frame)), codes] = np.sqrt(0.5)
                parts.extend(onehot.T)
        return np.ascontiguousarray(np.column_stack(parts))


def _two_nearest(queries: np.ndarray, points: np.ndarray, block_rows: int) -> np.ndarray:
    """Euclidean distances from each query row to its nearest and second-nearest point (with one
    point, the second is inf). scikit-learn's tree search, queried block_rows rows at a time so
    memory stays bounded. Rounded to 1e-9 so that exact ties (copies) compare equal."""
    from sklearn.neighbors import NearestNeighbors  # 1 s to import: only when a report runs

    out = np.full((len(queries), 2), np.inf)
    keep = min(2, len(points))
    index = NearestNeighbors(n_neighbors=keep).fit(points)
    for start in range(0, len(queries), block_rows):
        chunk = queries[start : start + block_rows]
        out[start : start + len(chunk), :keep] = index.kneighbors(chunk, return_distance=True)[0]
    return np.round(out, 9)


def _row_keys(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of the canonical frame (nulls hash alike)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _quantiles(values: np.ndarray, percents: tuple[int, ...]) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return {f"p{p}": None for p in percents}
    points = np.percentile(finite, percents)
    return {f"p{p}": json_number(v) for p, v in zip(percents, points, strict=True)}
