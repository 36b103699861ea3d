"""The HTML report of an image set's profile: histograms of the numeric features, a 2-D map of
the embeddings, a contact sheet of outliers, and the summary tables, in one folder.

`write_report(profile, records_for_thumbnails, out_dir)` writes (matplotlib, Agg backend):
- `features.png`: one histogram per numeric feature (from the profile JSON's histograms);
- `embeddings.png`: the embeddings projected on their first two principal components (PCA by
  SVD of at most `PCA_SAMPLE` rows, evenly spaced), coloured by label when there are labels;
- `outliers.png`: thumbnails of the images farthest from the embeddings' mean and of the
  extremes of brightness and sharpness, with why each is there; only when
  `records_for_thumbnails(keys)` is given (it returns the records of those keys);
- `report.html`: the summary, with the images by relative path.
It returns {name: path} for the files it wrote.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.imagesets.features import NUMERIC_FEATURES, safe_open
from synth_pipelines.core.imagesets.profile import ImageProfile
from synth_pipelines.core.imagesets.records import ImageRecord

PCA_SAMPLE = 20_000
OUTLIERS_FROM_MEAN = 8
THUMB_SIDE = 128
LABELS_IN_LEGEND = 12
MEAN_CHUNK = 65_536


def write_report(
    profile: ImageProfile,
    records_for_thumbnails: Callable[[list[str]], Iterable[ImageRecord]] | None,
    out_dir: Path,
) -> dict[str, Path]:
    """Write the report of `profile` into `out_dir` (see the module docstring); returns the
    paths by name: "features", "embeddings" (when some image was embedded), "outliers" (when
    thumbnails can be read) and "report"."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"features": _feature_histograms(profile, out_dir / "features.png")}
    embeddings = profile.embeddings()
    picks: list[tuple[str, str]] = []
    if len(embeddings):
        paths["embeddings"] = _embedding_map(profile, embeddings, out_dir / "embeddings.png")
        picks = outlier_picks(profile, embeddings)
    if records_for_thumbnails is not None and picks:
        sheet = _contact_sheet(picks, records_for_thumbnails, out_dir / "outliers.png")
        if sheet is not None:
            paths["outliers"] = sheet
    paths["report"] = _html(profile, paths, picks, out_dir / "report.html")
    return paths


# --- figures ---------------------------------------------------------------------------------


def _feature_histograms(profile: ImageProfile, path: Path) -> Path:
    import matplotlib.pyplot as plt

    columns = 4
    rows = math.ceil(len(NUMERIC_FEATURES) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    stats = profile.summary.get("features", {})
    for axis, name in zip(axes.flat, NUMERIC_FEATURES, strict=False):
        histogram = stats.get(name, {}).get("histogram")
        axis.set_title(name)
        if not histogram:
            axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes)
            continue
        edges = np.array(histogram["edges"])
        axis.bar(
            edges[:-1],
            histogram["counts"],
            width=np.diff(edges),
            align="edge",
            color="#4c72b0",
            edgecolor="white",
        )
        axis.axvline(stats[name]["p50"], color="#dd8452", linestyle="--", label="median")
        axis.set_ylabel("images")
    for axis in list(axes.flat)[len(NUMERIC_FEATURES) :]:
        axis.axis("off")
    figure.suptitle(f"{profile.summary.get('counts', {}).get('ok', 0)} images: feature histograms")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _sample_rows(count: int) -> np.ndarray:
    if count <= PCA_SAMPLE:
        return np.arange(count)
    return np.linspace(0, count - 1, PCA_SAMPLE).astype(np.int64)


def _sampled_labels(profile: ImageProfile, rows: np.ndarray) -> np.ndarray:
    """The labels ("" for none) of the embedded images at `rows` (embedding order: the ok
    rows of the features Parquet, in order)."""
    table = pq.read_table(profile.features_path, columns=["label", "embedding_row"])
    labels = table.filter(pc.is_valid(table["embedding_row"]))["label"].fill_null("")
    return np.array(labels.take(pa.array(rows)).to_pylist(), dtype=object)


def _embedding_map(profile: ImageProfile, embeddings: np.ndarray, path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows = _sample_rows(len(embeddings))
    sample = np.asarray(embeddings[rows], dtype=np.float64)
    centred = sample - sample.mean(axis=0)
    if len(sample) > 1:
        _, singular, components = np.linalg.svd(centred, full_matrices=False)
        points = centred @ components[:2].T
        explained = singular[:2] ** 2 / max(float((singular**2).sum()), 1e-12)
    else:
        points, explained = np.zeros((len(sample), 2)), np.zeros(2)
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        explained = np.pad(explained, (0, 2 - len(explained)))
    labels = _sampled_labels(profile, rows)
    figure, axis = plt.subplots(figsize=(7, 6))
    names = sorted(set(labels.tolist()))
    if len(names) > 1 and len(names) <= LABELS_IN_LEGEND:
        for name in names:
            chosen = labels == name
            axis.scatter(
                points[chosen, 0], points[chosen, 1], s=8, alpha=0.7, label=name or "(none)"
            )
        axis.legend(title="label", fontsize=8)
    else:
        axis.scatter(points[:, 0], points[:, 1], s=8, alpha=0.6, color="#4c72b0")
    axis.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    axis.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    axis.set_title(f"embeddings, {len(rows)} of {len(embeddings)} images")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def outlier_picks(profile: ImageProfile, embeddings: np.ndarray) -> list[tuple[str, str]]:
    """(key, why) for the images a reviewer should look at: the OUTLIERS_FROM_MEAN farthest
    from the embeddings' mean, then the darkest, brightest, blurriest and sharpest."""
    mean = np.zeros(embeddings.shape[1])
    for start in range(0, len(embeddings), MEAN_CHUNK):
        mean += np.asarray(embeddings[start : start + MEAN_CHUNK], np.float64).sum(axis=0)
    mean /= len(embeddings)
    distances = np.concatenate(
        [
            np.linalg.norm(np.asarray(embeddings[s : s + MEAN_CHUNK], np.float64) - mean, axis=1)
            for s in range(0, len(embeddings), MEAN_CHUNK)
        ]
    )
    farthest = np.argsort(-distances)[:OUTLIERS_FROM_MEAN].tolist()
    wanted = set(farthest)
    keys = {i: key for i, key in enumerate(profile.embedding_keys()) if i in wanted}
    picks = [(keys[i], f"far from mean {distances[i]:.2f}") for i in farthest]
    table = pq.read_table(profile.features_path, columns=["key", "ok", "brightness", "sharpness"])
    table = table.filter(table["ok"])
    for column, low, high in (
        ("brightness", "darkest", "brightest"),
        ("sharpness", "blurriest", "sharpest"),
    ):
        values = table[column].to_numpy()
        for index, why in ((int(np.argmin(values)), low), (int(np.argmax(values)), high)):
            picks.append((table["key"][index].as_py(), f"{why}: {values[index]:.0f}"))
    seen: set[str] = set()
    unique = []
    for key, why in picks:
        if key not in seen:
            seen.add(key)
            unique.append((key, why))
    return unique


def _contact_sheet(
    picks: list[tuple[str, str]],
    records_for_thumbnails: Callable[[list[str]], Iterable[ImageRecord]],
    path: Path,
) -> Path | None:
    wanted = {key for key, _ in picks}
    thumbs: dict[str, Image.Image] = {}
    for record in records_for_thumbnails(sorted(wanted)):
        if record.key not in wanted or record.key in thumbs:
            continue
        try:
            image = safe_open(record.data).convert("RGB")
        except InvalidInputError:
            continue
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        thumbs[record.key] = image
    shown = [(key, why) for key, why in picks if key in thumbs]
    if not shown:
        return None
    columns = min(4, len(shown))
    rows = math.ceil(len(shown) / columns)
    cell_w, cell_h = THUMB_SIDE + 16, THUMB_SIDE + 40
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (key, why) in enumerate(shown):
        x, y = (index % columns) * cell_w + 8, (index // columns) * cell_h + 4
        thumb = thumbs[key]
        sheet.paste(thumb, (x + (THUMB_SIDE - thumb.width) // 2, y))
        draw.text((x, y + THUMB_SIDE + 2), _clip(key, 22), fill="black")
        draw.text((x, y + THUMB_SIDE + 16), _clip(why, 22), fill="#aa3333")
    sheet.save(path)
    return path


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- the page --------------------------------------------------------------------------------


def _table(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _html(
    profile: ImageProfile, paths: dict[str, Path], picks: list[tuple[str, str]], path: Path
) -> Path:
    summary = profile.summary
    counts = summary.get("counts", {})
    features = summary.get("features", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Image set profile</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#eee}img{max-width:100%}</style></head><body>",
        "<h1>Image set profile</h1>",
        _table(
            ["images", "ok", "failed"],
            [[counts.get("images"), counts.get("ok"), counts.get("failed")]],
        ),
        "<h2>Numeric features</h2>",
        _table(
            ["feature", "min", "p5", "p50", "mean", "p95", "max", "std"],
            [
                [
                    name,
                    *(
                        features.get(name, {}).get(s)
                        for s in ("min", "p5", "p50", "mean", "p95", "max", "std")
                    ),
                ]
                for name in NUMERIC_FEATURES
            ],
        ),
    ]
    for name, title in (
        ("features", "Histograms"),
        ("embeddings", "Embeddings (PCA)"),
        ("outliers", "Outliers"),
    ):
        if name in paths:
            parts.append(
                f"<h2>{title}</h2><img src='{html.escape(paths[name].name)}' alt='{name}'>"
            )
    if picks:
        parts += ["<h2>Images to look at</h2>", _table(["key", "why"], picks)]
    for name, title in (("modes", "Modes"), ("formats", "Formats"), ("labels", "Labels")):
        values = summary.get(name) or {}
        if values:
            parts += [f"<h2>{title}</h2>", _table([name[:-1], "images"], values.items())]
    sizes = summary.get("sizes", {}).get("most_common", [])
    if sizes:
        parts += [
            "<h2>Most common sizes</h2>",
            _table(
                ["width", "height", "images"],
                [[s["width"], s["height"], s["count"]] for s in sizes],
            ),
        ]
    if summary.get("aspects"):
        parts += [
            "<h2>Aspect ratios</h2>",
            _table(["aspect", "images"], summary["aspects"].items()),
        ]
    duplicates = summary.get("near_duplicates", {})
    parts += [
        "<h2>Near-duplicates</h2>",
        _table(
            ["clusters", "images in clusters", "redundant", "distance (bits)"],
            [
                [
                    duplicates.get("clusters"),
                    duplicates.get("images_in_clusters"),
                    duplicates.get("redundant_images"),
                    duplicates.get("distance"),
                ]
            ],
        ),
        "<h2>Faces, text, GPS, OCR</h2>",
        f"<pre>{html.escape(json.dumps({k: summary.get(k) for k in ('faces', 'text', 'gps', 'ocr')}, indent=2))}</pre>",  # noqa: E501
    ]
    failures = summary.get("failures", [])
    if failures:
        more = summary.get("failures_not_listed", 0)
        parts += [
            f"<h2>Failures ({counts.get('failed')})</h2>",
            _table(["key", "reason"], [[f["key"], f["reason"]] for f in failures[:100]]),
        ]
        if len(failures) > 100 or more:
            parts.append(
                f"<p>{counts.get('failed', 0) - min(100, len(failures))} more not shown "
                "(see profile.json)</p>"
            )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
