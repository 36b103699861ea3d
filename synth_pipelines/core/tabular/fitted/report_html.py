"""The report of a fitted table: one self-contained HTML file (every plot a base64 PNG, no links
out) with the scores (quality, diagnostic, ML utility, privacy), a row per column, each modelled
column's distribution real vs synthetic, and the correlation-matrix difference. Also
`report_images`: two or three small PNGs for Dagster materialization metadata.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from synth_pipelines.core.tabular.fitted.frames import (
    MODELLED,
    canonical,
    cap_rows,
    sdtypes_for,
    shared_columns,
)
from synth_pipelines.core.tabular.fitted.report_plots import (
    column_png,
    columns_grid_png,
    correlation_difference,
    correlation_png,
    scores_png,
)
from synth_pipelines.core.tabular.schema import TableSchema

PLOT_MAX_ROWS = 20_000
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }
th { background: #f3f3f3; }
.fail { color: #b00020; font-weight: bold; } .pass { color: #1b7f3b; font-weight: bold; }
.columns { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; } figcaption { font-size: 0.8em; color: #555; }
"""


def write_report(
    path: str | Path,
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    quality: dict[str, Any],
    privacy: dict[str, Any] | None,
    ml: dict[str, Any] | None,
    *,
    schema: TableSchema | None = None,
    diagnostic: dict[str, Any] | None = None,
    verdict: list[str] | None = None,
    title: str | None = None,
    max_rows: int = PLOT_MAX_ROWS,
    seed: int = 0,
) -> Path:
    """Write the HTML report to `path` (its folder created) and return the path. `quality`,
    `privacy`, `ml`, `diagnostic` are the dicts of metrics.py; `verdict` the privacy verdict's
    reasons (empty: passed; None: not judged). Plots use at most max_rows rows of each frame."""
    path = Path(path)
    sdtypes = sdtypes_for(real, schema)
    names = shared_columns(real, synthetic)
    modelled = {name: sdtypes[name] for name in names if sdtypes[name] in MODELLED}
    real_rows = canonical(cap_rows(real, max_rows, seed), modelled)
    synthetic_rows = canonical(cap_rows(synthetic, max_rows, seed + 1), modelled)
    name = title or (schema.name if schema is not None else "table")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{_text(name)}: fitted table report</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_text(name)}: real vs synthetic</h1>",
        f"<p>{len(real):,} real rows, {len(synthetic):,} synthetic rows; plots on at most "
        f"{max_rows:,} rows of each.</p>",
        "<h2>Scores</h2>",
        _image(scores_png(summary_scores(quality, diagnostic, ml)), "summary scores"),
        _quality_table(quality, diagnostic),
    ]
    if ml is not None:
        parts.append(_ml_table(ml))
    if privacy is not None:
        parts.append(_privacy_table(privacy, verdict))
    parts.append(_columns_table(real, synthetic, sdtypes, quality))
    parts.append("<h2>Distributions</h2><div class='columns'>")
    for column, sdtype in modelled.items():
        picture = column_png(real_rows[column], synthetic_rows[column], sdtype)
        parts.append(_image(picture, f"{column} ({sdtype})", caption=f"{column} ({sdtype})"))
    parts.append("</div><h2>Correlation difference</h2>")
    difference = correlation_difference(real_rows, synthetic_rows, modelled)
    if difference is None:
        parts.append("<p>Fewer than two numeric, datetime or boolean columns: no matrix.</p>")
    else:
        parts.append(
            "<p>Pearson correlation of the synthetic rows minus that of the real rows (0 is "
            "perfect; booleans as 0/1, datetimes as seconds).</p>"
        )
        parts.append(_image(correlation_png(difference), "correlation difference"))
    parts.append(_pairs_table(quality))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def report_images(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    quality: dict[str, Any],
    *,
    schema: TableSchema | None = None,
    ml: dict[str, Any] | None = None,
    diagnostic: dict[str, Any] | None = None,
    max_columns: int = 6,
    max_rows: int = PLOT_MAX_ROWS,
    seed: int = 0,
) -> dict[str, bytes]:
    """Small PNGs for Dagster metadata: "scores.png" (the summary scores), "distributions.png"
    (the max_columns worst columns by shape score, real vs synthetic) and, with two or more
    numeric/datetime/boolean columns, "correlation_difference.png"."""
    sdtypes = sdtypes_for(real, schema)
    modelled = {
        name: sdtypes[name] for name in shared_columns(real, synthetic) if sdtypes[name] in MODELLED
    }
    shape_scores = {name: (entry.get("score") or 0.0) for name, entry in quality["columns"].items()}
    worst = sorted(modelled, key=lambda name: shape_scores.get(name, 1.0))[:max_columns]
    real_rows = canonical(cap_rows(real, max_rows, seed), modelled)
    synthetic_rows = canonical(cap_rows(synthetic, max_rows, seed + 1), modelled)
    images = {"scores.png": scores_png(summary_scores(quality, diagnostic, ml), dpi=60)}
    if worst:
        images["distributions.png"] = columns_grid_png(
            real_rows, synthetic_rows, {name: modelled[name] for name in worst}, dpi=50
        )
    difference = correlation_difference(real_rows, synthetic_rows, modelled)
    if difference is not None:
        images["correlation_difference.png"] = correlation_png(difference, dpi=50)
    return images


def summary_scores(
    quality: dict[str, Any], diagnostic: dict[str, Any] | None, ml: dict[str, Any] | None
) -> dict[str, float | None]:
    """The 0-1 scores worth a bar: quality and its two properties, diagnostic, ML utility ratio."""
    scores = {
        "quality": quality.get("score"),
        "column shapes": quality.get("column_shapes"),
        "column pair trends": quality.get("column_pair_trends"),
    }
    if diagnostic is not None:
        scores["diagnostic"] = diagnostic.get("score")
    if ml is not None:
        ratio = ml.get("ratio")
        scores["ML utility (synthetic / real)"] = None if ratio is None else min(ratio, 1.0)
    return scores


def _quality_table(quality: dict[str, Any], diagnostic: dict[str, Any] | None) -> str:
    rows = [
        ("Quality score (sdmetrics)", _score(quality.get("score"))),
        ("Column shapes", _score(quality.get("column_shapes"))),
        ("Column pair trends", _score(quality.get("column_pair_trends"))),
        ("Rows compared", _rows(quality.get("rows_compared"), quality.get("subsampled"))),
    ]
    if diagnostic is not None:
        rows += [
            ("Diagnostic score", _score(diagnostic.get("score"))),
            ("Data validity", _score(diagnostic.get("data_validity"))),
            ("Data structure", _score(diagnostic.get("data_structure"))),
        ]
    return "<h3>Quality</h3>" + _table(["", "value"], rows)


def _ml_table(ml: dict[str, Any]) -> str:
    metric = ml["metric"]
    rows = [
        ("Target", f"{_text(ml['target'])} ({_text(ml['task'])}; {_text(ml['target_reason'])})"),
        (f"{metric}, trained on real", _score(ml.get("score_real"))),
        (f"{metric}, trained on synthetic", _score(ml.get("score_synthetic"))),
        ("Synthetic / real", _score(ml.get("ratio"))),
        ("Rows", _text(", ".join(f"{k} {v:,}" for k, v in ml["rows"].items()))),
    ]
    return "<h3>ML utility (tested on the real holdout)</h3>" + _table(["", "value"], rows)


def _privacy_table(privacy: dict[str, Any], verdict: list[str] | None) -> str:
    nndr = privacy["nndr"]
    rows = [
        ("DCR share (closer to train than holdout)", _score(privacy["dcr_share"])),
        ("Identical-match share", _score(privacy["identical_match_share"])),
        (
            "Identical-match share vs holdout (chance)",
            _score(privacy["identical_match_share_holdout"]),
        ),
        ("NNDR p5 / p50 / p95", " / ".join(_score(nndr[key]) for key in ("p5", "p50", "p95"))),
        (
            "Rows compared",
            _text(", ".join(f"{k} {v:,}" for k, v in privacy["rows_compared"].items())),
        ),
    ]
    if verdict is not None:
        judged = (
            "<span class='pass'>passes</span>"
            if not verdict
            else "<span class='fail'>fails</span>: " + "; ".join(_text(r) for r in verdict)
        )
        rows.append(("Verdict", judged))
    return "<h3>Privacy (against a holdout the fit never saw)</h3>" + _table(["", "value"], rows)


def _columns_table(
    real: pd.DataFrame, synthetic: pd.DataFrame, sdtypes: dict[str, str], quality: dict[str, Any]
) -> str:
    rows = []
    for name in real.columns:
        shape = quality["columns"].get(name)
        if name not in synthetic.columns:
            note = "not in the synthetic rows"
        elif shape is None:
            note = "not compared: " + (
                "a key" if sdtypes[name] == "id" else "generated text (PII / free text), not fitted"
            )
        else:
            note = f"{shape['metric']} {_score(shape['score'])}"
        real_nulls = real[name].isna().mean()
        synthetic_nulls = synthetic[name].isna().mean() if name in synthetic.columns else None
        nulls = f"{real_nulls:.1%} / " + (
            "-" if synthetic_nulls is None else f"{synthetic_nulls:.1%}"
        )
        rows.append((_text(name), _text(sdtypes[name]), nulls, _text(note)))
    return "<h2>Columns</h2>" + _table(
        ["column", "sdtype", "nulls real / synthetic", "shape"], rows
    )


def _pairs_table(quality: dict[str, Any]) -> str:
    scored = [pair for pair in quality.get("pairs", []) if pair.get("score") is not None]
    if not scored:
        return "<p>No column pair is correlated or associated enough in the real rows to score.</p>"
    scored.sort(key=lambda pair: pair["score"])
    rows = [
        (
            _text(" / ".join(pair["columns"])),
            _text(pair["metric"]),
            _score(pair["score"]),
            _score(pair.get("real_correlation")),
            _score(pair.get("synthetic_correlation")),
        )
        for pair in scored[:30]
    ]
    return "<h3>Column pair trends (worst first)</h3>" + _table(
        ["columns", "metric", "score", "real corr.", "synthetic corr."], rows
    )


def _table(header: list[str], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{_text(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(picture: bytes, alt: str, *, caption: str | None = None) -> str:
    data = base64.b64encode(picture).decode("ascii")
    tag = f"<img alt='{_text(alt)}' src='data:image/png;base64,{data}'>"
    if caption is None:
        return f"<figure>{tag}</figure>"
    return f"<figure>{tag}<figcaption>{_text(caption)}</figcaption></figure>"


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rows(rows: dict[str, int] | None, subsampled: bool | None) -> str:
    if not rows:
        return "n/a"
    text = ", ".join(f"{key} {value:,}" for key, value in rows.items())
    return _text(text + (" (subsampled)" if subsampled else ""))


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)
