"""The Gaussian copula: a correlation matrix of normal scores, and draws from it.

`correlation` is pairwise over the rows where both variables are present (nulls are their own
indicator variables, so a missing value is not a zero), made positive definite by clipping its
eigenvalues. `draw` samples normal scores, conditional on given ones when there are (the
Gaussian conditional: mean Σfg Σgg⁻¹ zg, covariance Σff - Σfg Σgg⁻¹ Σgf).
"""

import numpy as np

__all__ = ["correlation", "draw", "shrink"]

_MIN_EIGEN = 1e-4


def nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """A symmetric positive definite matrix with unit diagonal near `matrix`."""
    matrix = (matrix + matrix.T) / 2
    eigenvalues, vectors = np.linalg.eigh(matrix)
    fixed = (vectors * np.maximum(eigenvalues, _MIN_EIGEN)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    fixed = fixed / scale[:, None] / scale[None, :]
    np.fill_diagonal(fixed, 1.0)
    return fixed


def correlation(scores: np.ndarray) -> np.ndarray:
    """Pairwise-complete correlation of the columns of `scores` (rows x variables, NaN for
    missing); pairs seen together on fewer than 3 rows are uncorrelated."""
    present = ~np.isnan(scores)
    z = np.where(present, scores, 0.0)
    mask = present.astype(np.float64)
    products = z.T @ z
    squares = (z * z).T @ mask  # [i, j]: sum of z_i^2 over the rows where j is present too
    together = mask.T @ mask
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = products / np.sqrt(squares * squares.T)
    corr = np.where((together >= 3) & np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return nearest_correlation(np.clip(corr, -1.0, 1.0))


def shrink(matrix: np.ndarray, rows: int, towards: np.ndarray, weight: float) -> np.ndarray:
    """`matrix` (estimated from `rows` rows) pulled towards `towards` as if it held `weight`
    rows: a small group's correlations borrow from the whole table's."""
    return nearest_correlation((rows * matrix + weight * towards) / (rows + weight))


def draw(
    corr: np.ndarray,
    rows: int,
    rng: np.random.Generator,
    given: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """`rows` x d normal scores from N(0, corr); variables in `given` (index -> scores) are
    fixed and the others drawn conditional on them."""
    d = len(corr)
    out = np.empty((rows, d))
    if not given:
        # float32 normals: half the cost of the draw, precision far beyond a 257-point grid
        normals = rng.standard_normal((rows, d), dtype=np.float32)
        return normals @ np.linalg.cholesky(corr).T.astype(np.float32)
    g = np.array(sorted(given))
    f = np.array([i for i in range(d) if i not in given], dtype=np.int64)
    zg = np.column_stack([given[i] for i in g])
    out[:, g] = zg
    if len(f):
        solve = np.linalg.solve(corr[np.ix_(g, g)], corr[np.ix_(g, f)])  # Σgg⁻¹ Σgf
        cov = corr[np.ix_(f, f)] - corr[np.ix_(f, g)] @ solve
        cov = (cov + cov.T) / 2 + np.eye(len(f)) * 1e-9
        eigenvalues, vectors = np.linalg.eigh(cov)
        root = vectors * np.sqrt(np.maximum(eigenvalues, 0.0))
        out[:, f] = zg @ solve + rng.standard_normal((rows, len(f))) @ root.T
    return out
