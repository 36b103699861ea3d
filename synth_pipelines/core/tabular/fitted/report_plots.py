"""The plots of a fitted table's report, as PNG bytes: one column's distribution real vs synthetic,
a grid of several, the correlation-matrix difference, the scores. Matplotlib's object API on the
Agg canvas (no pyplot, no global state), so it runs in any thread or worker.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

REAL_COLOUR = "#4c72b0"
SYNTHETIC_COLOUR = "#dd8452"
TOP_CATEGORIES = 12
BINS = 30


def png(figure: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def column_png(real: pd.Series, synthetic: pd.Series, sdtype: str, *, dpi: int = 80) -> bytes:
    """One column real vs synthetic: a density histogram on shared bins (numbers, datetimes) or
    the shares of the most frequent values, null included (categories, booleans)."""
    figure = Figure(figsize=(4.2, 2.6))
    draw_column(figure.add_subplot(), real, synthetic, sdtype)
    return png(figure, dpi)


def columns_grid_png(
    real: pd.DataFrame, synthetic: pd.DataFrame, sdtypes: dict[str, str], *, dpi: int = 72
) -> bytes:
    """Several columns in a grid of three across, one panel each as in `column_png`."""
    names = list(sdtypes)
    rows = max(1, -(-len(names) // 3))
    figure = Figure(figsize=(10, 2.6 * rows))
    for position, name in enumerate(names, start=1):
        draw_column(
            figure.add_subplot(rows, 3, position), real[name], synthetic[name], sdtypes[name]
        )
    figure.tight_layout()
    return png(figure, dpi)


def draw_column(axes: Axes, real: pd.Series, synthetic: pd.Series, sdtype: str) -> None:
    axes.set_title(str(real.name), fontsize=9)
    axes.tick_params(labelsize=7)
    if sdtype in ("numerical", "datetime"):
        real_values, synthetic_values = _as_numbers(real), _as_numbers(synthetic)
        finite = np.concatenate([real_values, synthetic_values])
        finite = finite[np.isfinite(finite)]
        if not len(finite):
            axes.text(0.5, 0.5, "all null", ha="center", va="center", transform=axes.transAxes)
            return
        edges = np.histogram_bin_edges(finite, bins=BINS)
        for values, colour, label in (
            (real_values, REAL_COLOUR, "real"),
            (synthetic_values, SYNTHETIC_COLOUR, "synthetic"),
        ):
            values = values[np.isfinite(values)]
            if len(values):
                axes.hist(values, bins=edges, density=True, alpha=0.55, color=colour, label=label)
        axes.set_yticks([])  # densities: the shape matters, not the units
        if sdtype == "datetime":
            ticks = np.linspace(edges[0], edges[-1], 3)
            axes.set_xticks(ticks, [str(pd.Timestamp(t, unit="s").date()) for t in ticks])
    else:
        real_shares = _shares(real)
        synthetic_shares = _shares(synthetic)
        labels = list(real_shares.index[:TOP_CATEGORIES])
        positions = np.arange(len(labels))
        axes.bar(positions - 0.2, real_shares.reindex(labels, fill_value=0), 0.4, color=REAL_COLOUR)
        axes.bar(
            positions + 0.2, synthetic_shares.reindex(labels, fill_value=0), 0.4,
            color=SYNTHETIC_COLOUR,
        )  # fmt: skip
        axes.set_xticks(positions, [label[:12] for label in labels], rotation=45, ha="right")
        axes.set_ylabel("share", fontsize=7)
    axes.legend(["real", "synthetic"], fontsize=7)


def correlation_difference(
    real: pd.DataFrame, synthetic: pd.DataFrame, sdtypes: dict[str, str]
) -> pd.DataFrame | None:
    """Synthetic minus real Pearson correlation over the numeric, datetime and boolean columns
    (booleans as 0/1); None with fewer than two such columns."""
    names = [name for name, kind in sdtypes.items() if kind in ("numerical", "datetime", "boolean")]
    if len(names) < 2:
        return None
    matrices = [
        pd.DataFrame({name: _as_numbers(frame[name]) for name in names}).corr()
        for frame in (real, synthetic)
    ]
    return matrices[1] - matrices[0]


def correlation_png(difference: pd.DataFrame, *, dpi: int = 80) -> bytes:
    """A heatmap of a correlation difference, -1 (blue) to +1 (red), values written in."""
    size = min(12.0, 1.6 + 0.45 * len(difference))
    figure = Figure(figsize=(size + 1.2, size))
    axes = figure.add_subplot()
    values = difference.to_numpy(dtype=float)
    image = axes.imshow(np.nan_to_num(values), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [str(name)[:16] for name in difference.columns]
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    if len(labels) <= 15:
        for (row, column), value in np.ndenumerate(values):
            text = "" if np.isnan(value) else f"{value:+.2f}"
            axes.text(column, row, text, ha="center", va="center", fontsize=6)
    axes.set_title("correlation: synthetic minus real", fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return png(figure, dpi)


def scores_png(scores: dict[str, float | None], *, dpi: int = 80) -> bytes:
    """Horizontal bars of 0-1 scores, labelled with their values (None: "n/a")."""
    figure = Figure(figsize=(5.5, 0.45 * max(2, len(scores)) + 0.6))
    axes = figure.add_subplot()
    names = list(scores)
    values = [scores[name] or 0.0 for name in names]
    axes.barh(range(len(names)), values, color=REAL_COLOUR)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlim(0, 1.1)
    axes.invert_yaxis()
    for position, name in enumerate(names):
        label = "n/a" if scores[name] is None else f"{scores[name]:.3f}"
        axes.text(values[position] + 0.01, position, label, va="center", fontsize=8)
    return png(figure, dpi)


def _as_numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        seconds = series.astype("datetime64[ns]").astype("int64").to_numpy(dtype=float) / 1e9
        return np.where(series.isna().to_numpy(), np.nan, seconds)
    if pd.api.types.is_bool_dtype(series) or series.dtype == object:
        return pd.to_numeric(series.map(_bool_number), errors="coerce").to_numpy(dtype=float)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def _bool_number(value: Any) -> Any:
    return float(value) if isinstance(value, bool | np.bool_) else value


def _shares(series: pd.Series) -> pd.Series:
    labels = series.astype(object).where(series.notna(), "(null)").astype(str)
    return labels.value_counts(normalize=True)
