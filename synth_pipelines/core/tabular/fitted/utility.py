"""ML utility of a fitted table: does a model trained on the synthetic rows predict the real ones
as well as a model trained on the real rows? Both are scikit-learn histogram gradient boosting
(nulls and categories handled natively), both tested on the real holdout the fit never saw.

A categorical or boolean target is a classification (macro F1, accuracy), a numeric one a
regression (R2). With no target named, one is picked and the result says which and why: a column
named target/label/class/y/outcome; else the last column when it has 2-20 classes; else the
categorical or boolean column with 2-20 classes of the most entropy; else the last numeric one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
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

UTILITY_MAX_ROWS = 50_000
TARGET_NAMES = ("target", "label", "class", "y", "outcome")
MAX_CLASSES = 20
_MAX_CODES = 250  # HistGradientBoosting takes at most 255 categories per feature


def ml_utility(
    train_real: pd.DataFrame,
    holdout_real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    target: str | None = None,
    schema: TableSchema | None = None,
    max_rows: int = UTILITY_MAX_ROWS,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    """Train on synthetic / test on the real holdout, against train on real / test on holdout.

    Returns {task ("classification" | "regression"), target, target_reason, metric ("f1_macro" |
    "r2"), score_real, score_synthetic (the metric for each training set), ratio
    (synthetic / real, None when real <= 0), real: {metric: value}, synthetic: {metric: value},
    features, rows: {train_real, synthetic, holdout}, max_rows, seconds}.

    `threads` caps OpenMP for the models: on a busy machine its spinning threads ran 30x slower
    than one thread (a 3k-row fit: 0.7 s on one, 23 s on two)."""
    started = time.perf_counter()
    sdtypes = sdtypes_for(train_real, schema)
    names = [
        name
        for name in shared_columns(train_real, synthetic)
        if name in holdout_real.columns and sdtypes.get(name) in MODELLED
    ]
    kinds = {name: sdtypes[name] for name in names}
    real = canonical(cap_rows(train_real, max_rows, seed), kinds)
    fake = canonical(cap_rows(synthetic, max_rows, seed + 1), kinds)
    test = canonical(cap_rows(holdout_real, max_rows, seed + 2), kinds)
    target, reason = _pick_target(real, kinds, target, last_column=train_real.columns[-1])
    task = "regression" if kinds[target] in ("numerical", "datetime") else "classification"
    features = [name for name in names if name != target]
    if not features:
        raise FieldError("target", f"no column left to predict {target!r} from")
    real, fake, test = (frame[frame[target].notna()] for frame in (real, fake, test))
    if not len(real) or not len(test):
        raise FieldError("target", f"target {target!r} is null in every real row")
    encoder = _FeatureEncoder(pd.concat([real, fake]), {name: kinds[name] for name in features})
    with threadpool_limits(limits=threads):
        scores = {
            source: _fit_and_score(task, encoder, frame, test, target, seed)
            for source, frame in (("real", real), ("synthetic", fake))
        }
    metric = "f1_macro" if task == "classification" else "r2"
    score_real, score_synthetic = scores["real"][metric], scores["synthetic"][metric]
    ratio = (
        json_number(score_synthetic / score_real)
        if score_real is not None and score_synthetic is not None and score_real > 0
        else None
    )
    return {
        "task": task,
        "target": target,
        "target_reason": reason,
        "metric": metric,
        "score_real": score_real,
        "score_synthetic": score_synthetic,
        "ratio": ratio,
        "real": scores["real"],
        "synthetic": scores["synthetic"],
        "features": features,
        "rows": {"train_real": len(real), "synthetic": len(fake), "holdout": len(test)},
        "max_rows": max_rows,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _pick_target(
    frame: pd.DataFrame, kinds: dict[str, str], target: str | None, *, last_column: str
) -> tuple[str, str]:
    if target is not None:
        if target not in kinds:
            raise FieldError(
                "target",
                f"target {target!r} is not a modelled column (number, date, category, boolean) "
                f"of the real and synthetic rows; pick one of: {', '.join(kinds) or 'none'}",
            )
        return target, "named"
    if not kinds:
        raise FieldError(
            "target", "no modelled column (number, date, category, boolean) to predict"
        )
    for name in kinds:
        if name.lower() in TARGET_NAMES:
            return name, f"named {name!r}"
    discrete = {
        name: frame[name].value_counts(normalize=True).to_numpy()
        for name, kind in kinds.items()
        if kind in ("categorical", "boolean") and 2 <= frame[name].nunique() <= MAX_CLASSES
    }
    if last_column in discrete:  # tables tend to put the outcome last
        return last_column, f"the last column, with {len(discrete[last_column])} classes"
    if discrete:
        entropy = {name: -(shares * np.log2(shares)).sum() for name, shares in discrete.items()}
        best = max(entropy, key=entropy.__getitem__)
        return best, (
            f"the categorical/boolean column with 2-{MAX_CLASSES} classes of the most entropy "
            f"({entropy[best]:.2f} bits)"
        )
    numeric = [
        name for name, kind in kinds.items() if kind == "numerical" and frame[name].nunique() > 2
    ]
    if numeric:
        return numeric[-1], "no categorical column with 2-20 values: the last numeric column"
    raise FieldError("target", "no column varies enough to be a target: name one")


class _FeatureEncoder:
    """Features as a float matrix (datetimes in seconds, categories as codes of the reference
    rows' most frequent values, unseen or null as NaN) and the categorical mask."""

    def __init__(self, reference: pd.DataFrame, kinds: dict[str, str]):
        self.kinds = kinds
        self.codes = {
            name: pd.Index(reference[name].dropna().astype(str).value_counts().index[:_MAX_CODES])
            for name, kind in kinds.items()
            if kind in ("categorical", "boolean")
        }
        self.categorical = np.array([name in self.codes for name in kinds])

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for name in self.kinds:
            series = frame[name]
            if name in self.codes:
                codes = self.codes[name].get_indexer(series.astype(str)).astype(float)
                codes[(codes < 0) | series.isna().to_numpy()] = np.nan
                columns.append(codes)
            else:  # numbers, and datetimes in seconds
                columns.append(as_float(series))
        return np.column_stack(columns)


def _fit_and_score(
    task: str,
    encoder: _FeatureEncoder,
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    seed: int,
) -> dict[str, float | None]:
    # scikit-learn takes a second to import: only when a report runs.
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    x_train, x_test = encoder(train), encoder(test)
    options = {"categorical_features": encoder.categorical, "random_state": seed}
    if task == "classification":
        y_train, y_test = train[target].astype(str), test[target].astype(str)
        model = (
            HistGradientBoostingClassifier(early_stopping=False, **options)
            if y_train.nunique() > 1
            else DummyClassifier(strategy="most_frequent")
        )
        predicted = model.fit(x_train, y_train).predict(x_test)
        return {
            "f1_macro": json_number(f1_score(y_test, predicted, average="macro")),
            "accuracy": json_number(accuracy_score(y_test, predicted)),
        }
    y_train, y_test = _as_target_numbers(train[target]), _as_target_numbers(test[target])
    model = (
        HistGradientBoostingRegressor(early_stopping=False, **options)
        if np.unique(y_train).size > 1
        else DummyRegressor()
    )
    predicted = model.fit(x_train, y_train).predict(x_test)
    return {"r2": json_number(r2_score(y_test, predicted)) if len(y_test) > 1 else None}


def _as_target_numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("int64").to_numpy(dtype=float) / 1e9
    return series.to_numpy(dtype=float)
