"""One variable's distribution, fitted without keeping its values.

- continuous: a smoothed empirical quantile function (averaged over a narrow window of
  probabilities, inside the observed range), stored at `GRID` evenly spaced probabilities.
  Sampling interpolates it, so values are new, inside the range, and the shape (skew, several
  modes) is the sample's, not a parametric family's.
- discrete: probabilities of codes 0..k-1 (categories, booleans, null indicators, numbers with
  few distinct values, whose `values` the codes stand for).

`normal_scores` turns a sample into the copula's normal scores: ranks with random tie-breaking
(the distributional transform for discrete variables), mapped through the normal quantile.
"""

import numpy as np
from scipy.special import ndtri

from synth_pipelines.core.tabular.fitted.spec import Marginal

__all__ = [
    "GRID",
    "Marginal",
    "cdf",
    "fit_continuous",
    "fit_discrete",
    "normal_scores",
    "quantile",
    "quantile_of_score",
]

GRID = 257
_PROBS = np.linspace(0.0, 1.0, GRID)
# Light smoothing (measured on load_wine / load_breast_cancer halves: 0.25 to 1 change the
# quality score by < 0.01 and the DCR share by < 0.02): the shape stays, no value is copied.
BANDWIDTH = 0.5
_NODES = ndtri((np.arange(64) + 0.5) / 64)  # the window's probabilities, standard normal


def fit_continuous(x: np.ndarray, bandwidth: float | None = None) -> Marginal:
    """Quantiles of `x` (finite floats, at least one), smoothed: the empirical quantile function
    averaged over a Gaussian window of probabilities (width `bandwidth` / sqrt(n)). Smoothing
    in probability follows the local density, so a gap between two modes or a sharp edge stays
    sharp; no stored quantile but the first and last (min, max) is a sample value."""
    bandwidth = BANDWIDTH if bandwidth is None else bandwidth
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = len(x)
    if x[-1] <= x[0]:
        return Marginal(quantiles=[float(x[0])] * GRID)
    positions = (np.arange(n) + 0.5) / n
    at = np.clip(_PROBS[:, None] + bandwidth / np.sqrt(n) * _NODES[None, :], 0.0, 1.0)
    q = np.interp(at, positions, x).mean(axis=1)
    q[0], q[-1] = x[0], x[-1]
    return Marginal(quantiles=[float(v) for v in np.maximum.accumulate(q)])


def fit_discrete(codes: np.ndarray, k: int, values: list[float] | None = None) -> Marginal:
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=k)[:k].astype(np.float64)
    total = counts.sum()
    probs = counts / total if total else np.full(k, 1.0 / k)
    return Marginal(probs=[float(p) for p in probs], values=values)


def quantile(marginal: Marginal, u: np.ndarray) -> np.ndarray:
    """Values at probabilities `u`: numbers (continuous, or a discrete marginal's `values`) or
    codes (float) of a discrete one."""
    if marginal.quantiles is not None:
        return np.interp(u, _PROBS, np.asarray(marginal.quantiles))
    cum = np.cumsum(np.asarray(marginal.probs))
    codes = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)
    if marginal.values is not None:
        return np.asarray(marginal.values)[codes]
    return codes.astype(np.float64)


_SCORES = ndtri(np.clip(_PROBS, 1e-7, 1 - 1e-7))  # the grid's probabilities as normal scores


def quantile_of_score(marginal: Marginal, z: np.ndarray) -> np.ndarray:
    """`quantile(marginal, Φ(z))` without computing Φ: the grid is interpolated in normal
    scores (the same points; between them, linear in z rather than in probability)."""
    if marginal.quantiles is not None:
        return np.interp(z, _SCORES, np.asarray(marginal.quantiles))
    cum = np.cumsum(np.asarray(marginal.probs))
    bounds = ndtri(np.clip(cum / cum[-1], 0.0, 1.0))
    codes = np.minimum(np.searchsorted(bounds, z, side="right"), len(cum) - 1)
    if marginal.values is not None:
        return np.asarray(marginal.values)[codes]
    return codes.astype(np.float64)


def cdf(marginal: Marginal, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The probability of each value `x` (a code for a discrete marginal without values, drawn
    uniformly within its step): the inverse of `quantile`, for conditioning on given values."""
    if marginal.quantiles is not None:
        q = np.asarray(marginal.quantiles)
        if q[-1] <= q[0]:
            return np.full(len(x), 0.5)
        return np.interp(x, q, _PROBS)
    probs = np.asarray(marginal.probs)
    if marginal.values is not None:
        codes = np.searchsorted(np.asarray(marginal.values), x).clip(0, len(probs) - 1)
    else:
        codes = np.nan_to_num(x).astype(np.int64).clip(0, len(probs) - 1)
    before = np.concatenate([[0.0], np.cumsum(probs)])[codes]
    return before + rng.random(len(x)) * probs[codes]


def normal_scores(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normal scores of `x` (NaN stays NaN): ranks, ties broken at random, through the normal
    quantile."""
    out = np.full(len(x), np.nan)
    present = ~np.isnan(x)
    values = x[present]
    n = len(values)
    if n == 0:
        return out
    order = np.lexsort((rng.random(n), values))
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    out[present] = ndtri((ranks + 0.5) / n)
    return out
