"""Quality, utility and privacy of fitted tables, on real sdmetrics and real scikit-learn, with
seeded data: copies of the training rows fail the privacy checks, an independent sample of the same
distribution passes them, broken correlations lower the pair trends, and the HTML report stands
on its own."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.fitted.metrics import (
    PrivacyThresholds,
    diagnostic_report,
    ml_utility,
    privacy_report,
    privacy_verdict,
    quality_report,
    sdmetrics_metadata,
    split_holdout,
)
from synth_pipelines.core.tabular.fitted.report_html import report_images, write_report
from synth_pipelines.core.tabular.schema import TableSchema

PNG = b"\x89PNG\r\n\x1a\n"

SCHEMA = TableSchema.model_validate(
    {
        "name": "customers",
        "columns": [
            {"name": "customer_id", "type": "integer", "semantic_type": "id", "unique": True},
            {"name": "email", "type": "string", "semantic_type": "email"},
            {"name": "age", "type": "integer", "min": 18, "max": 90},
            {"name": "income", "type": "float", "nullable": 0.1},
            {"name": "spend", "type": "float"},
            {"name": "segment", "type": "category", "categories": ["low", "mid", "high"]},
            {"name": "active", "type": "boolean", "nullable": 0.05},
            {"name": "joined", "type": "date"},
            {"name": "last_seen", "type": "datetime"},
        ],
    }
)


def population(rows: int, seed: int) -> pd.DataFrame:
    """A seeded mixed table: correlated numbers, a category and a boolean that follow them,
    dates, nulls, an id and an email (PII)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 91, rows)
    income = 20_000 + 900 * (age - 18) + rng.normal(0, 8_000, rows)
    spend = 0.1 * income + rng.normal(0, 1_000, rows)
    segment = np.where(spend < 3_500, "low", np.where(spend < 6_000, "mid", "high"))
    active = rng.random(rows) < np.where(segment == "high", 0.8, 0.3)
    joined = [date(2015, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 3_000, rows)]
    seconds = rng.integers(0, 365 * 86_400, rows)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(rows) + seed * 1_000_000,
            "email": [f"user{seed}_{i}@example.com" for i in range(rows)],
            "age": age,
            "income": income.round(2),
            "spend": spend.round(2),
            "segment": segment,
            "active": active.astype(object),
            "joined": joined,
            "last_seen": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "active"] = None
    return frame


def shuffled_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Each column permuted on its own: the same shapes, every relation between columns gone."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {name: frame[name].to_numpy()[rng.permutation(len(frame))] for name in frame.columns}
    )


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return population(3_000, seed=1)


@pytest.fixture(scope="module")
def split(real: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_holdout(real, share=0.5, seed=7)


def test_metadata_speaks_sdmetrics_sdtypes() -> None:
    metadata = sdmetrics_metadata(SCHEMA)
    sdtypes = {name: entry["sdtype"] for name, entry in metadata["columns"].items()}
    assert sdtypes == {
        "customer_id": "id",
        "email": "email",
        "age": "numerical",
        "income": "numerical",
        "spend": "numerical",
        "segment": "categorical",
        "active": "boolean",
        "joined": "datetime",
        "last_seen": "datetime",
    }
    assert metadata["primary_key"] == "customer_id"
    assert metadata["columns"]["email"]["pii"] is True


def test_holdout_split_is_disjoint_complete_and_seeded(real: pd.DataFrame) -> None:
    train, holdout = split_holdout(real, share=0.3, seed=3)
    assert len(holdout) == 900 and len(train) == 2_100
    assert set(train.index).isdisjoint(holdout.index)
    assert set(train.index) | set(holdout.index) == set(real.index)
    again, _ = split_holdout(real, share=0.3, seed=3)
    other, _ = split_holdout(real, share=0.3, seed=4)
    assert list(again.index) == list(train.index)
    assert list(other.index) != list(train.index)
    with pytest.raises(FieldError) as caught:
        split_holdout(real, share=1.0)
    assert caught.value.field == "holdout_share"


def test_copies_of_the_training_rows_fail_privacy(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = split
    copies = train.sample(frac=1.0, random_state=0)  # the same rows, another order
    report = privacy_report(train, holdout, copies, SCHEMA)
    assert report["identical_match_share"] == 1.0
    assert report["identical_matches"] == len(train)
    assert report["dcr_share"] >= 0.99
    assert report["nndr"]["p50"] == 0.0
    assert set(report["columns_compared"]) == {
        "age", "income", "spend", "segment", "active", "joined", "last_seen",
    }  # fmt: skip
    reasons = privacy_verdict(report, PrivacyThresholds())
    assert len(reasons) == 2
    assert "DCR share" in reasons[0] and "copy a training row" in reasons[1]


def test_an_independent_sample_of_the_same_distribution_passes(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, holdout = split
    synthetic = population(6_000, seed=99)
    report = privacy_report(train, holdout, synthetic, SCHEMA)
    assert 0.45 <= report["dcr_share"] <= 0.55
    assert report["identical_match_share"] == 0.0
    assert report["rows_compared"] == {"synthetic": 6_000, "train": 1_500, "holdout": 1_500}
    assert 0.0 < report["nndr"]["p5"] < report["nndr"]["p50"] <= report["nndr"]["p95"] <= 1.0
    assert privacy_verdict(report, PrivacyThresholds()) == []
    # Thresholds are settings: a tighter one fails the same report.
    strict = PrivacyThresholds(dcr_share_max=0.2, nndr_p5_min=0.99)
    assert len(privacy_verdict(report, strict)) == 2


def test_privacy_caps_rows_and_blocks_give_the_same_distances(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, holdout = split
    synthetic = pd.concat([population(2_000, seed=5), train.iloc[:20]])
    whole = privacy_report(train, holdout, synthetic, SCHEMA)
    blocked = privacy_report(train, holdout, synthetic, SCHEMA, block_rows=97)
    assert blocked["dcr_share"] == whole["dcr_share"]
    assert blocked["nndr"] == whole["nndr"]
    assert whole["identical_matches"] == 20
    capped = privacy_report(train, holdout, synthetic, SCHEMA, max_rows=500)
    assert capped["rows_compared"] == {"synthetic": 500, "train": 500, "holdout": 500}
    assert capped["rows_matched"] == len(synthetic)  # identical matches check every row
    assert capped["identical_matches"] == 20


def test_broken_correlations_lower_pair_trends_not_shapes(real: pd.DataFrame) -> None:
    correlated = population(4_000, seed=2)
    shuffled = shuffled_columns(correlated, seed=3)
    good = quality_report(real, correlated, SCHEMA)
    broken = quality_report(real, shuffled, SCHEMA)
    assert good["column_shapes"] == pytest.approx(broken["column_shapes"], abs=0.01)
    assert good["column_pair_trends"] > 0.85  # sdmetrics bins each frame on its own range
    assert broken["column_pair_trends"] < good["column_pair_trends"] - 0.15
    assert broken["score"] < good["score"]
    assert set(good["columns"]) == {
        "age", "income", "spend", "segment", "active", "joined", "last_seen",
    }  # fmt: skip
    assert good["columns"]["segment"]["metric"] == "TVComplement"
    assert good["columns"]["age"]["metric"] == "KSComplement"
    pair = next(p for p in good["pairs"] if set(p["columns"]) == {"income", "spend"})
    assert pair["meets_threshold"] and pair["real_correlation"] > 0.5
    assert good["rows_compared"] == {"real": 3_000, "synthetic": 4_000}
    assert good["subsampled"] is False


def test_quality_subsamples_big_frames_and_says_so(real: pd.DataFrame) -> None:
    report = quality_report(real, population(4_000, seed=2), SCHEMA, max_rows=1_000)
    assert report["rows_compared"] == {"real": 1_000, "synthetic": 1_000}
    assert report["subsampled"] is True and report["max_rows"] == 1_000
    assert 0.8 < report["score"] <= 1.0


def test_diagnostic_sees_out_of_range_values(real: pd.DataFrame) -> None:
    synthetic = population(2_000, seed=4)
    valid = diagnostic_report(real, synthetic, SCHEMA)
    assert valid["score"] > 0.95
    assert valid["columns"]["customer_id"] == {"KeyUniqueness": 1.0}
    broken = synthetic.copy()
    broken.loc[:999, "age"] = 500  # half the ages out of the real range
    broken.loc[:999, "segment"] = "unheard-of"
    invalid = diagnostic_report(real, broken, SCHEMA)
    assert invalid["columns"]["age"]["BoundaryAdherence"] == pytest.approx(0.5, abs=0.01)
    assert invalid["columns"]["segment"]["CategoryAdherence"] == pytest.approx(0.5, abs=0.01)
    assert invalid["data_validity"] < valid["data_validity"]
    assert valid["columns_missing"] == []
    assert diagnostic_report(real, synthetic.drop(columns=["email"]), SCHEMA)[
        "columns_missing"
    ] == ["email"]


def test_ml_utility_picks_a_target_and_scores_both(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, holdout = split
    good = ml_utility(train, holdout, population(3_000, seed=8), schema=SCHEMA)
    assert good["target"] == "segment" and good["task"] == "classification"
    assert "categorical" in good["target_reason"]
    assert good["metric"] == "f1_macro"
    assert good["score_real"] > 0.8 and good["score_synthetic"] > 0.8
    assert set(good["real"]) == {"f1_macro", "accuracy"}
    assert "customer_id" not in good["features"] and "email" not in good["features"]
    shuffled = ml_utility(
        train, holdout, shuffled_columns(population(3_000, seed=8), 1), schema=SCHEMA
    )
    assert shuffled["score_synthetic"] < good["score_synthetic"] - 0.3
    assert shuffled["score_real"] == good["score_real"]  # trained on the same real rows


def test_ml_utility_regression_on_a_named_target(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, holdout = split
    result = ml_utility(train, holdout, population(3_000, seed=8), target="spend", schema=SCHEMA)
    assert result["task"] == "regression" and result["metric"] == "r2"
    assert result["target_reason"] == "named"
    assert result["score_real"] > 0.5 and result["score_synthetic"] > 0.5
    assert result["ratio"] == pytest.approx(result["score_synthetic"] / result["score_real"])
    with pytest.raises(FieldError) as caught:
        ml_utility(train, holdout, population(500, seed=8), target="email", schema=SCHEMA)
    assert caught.value.field == "target" and "email" in str(caught.value)


def test_mixed_types_nulls_and_dates_as_strings_without_a_schema() -> None:
    """Frames as read from a CSV: dates as ISO strings, booleans and nulls; ML utility reads the
    types off the frame."""
    real = population(1_200, seed=11)
    synthetic = population(1_200, seed=12)
    for frame in (real, synthetic):
        frame["joined"] = [d.isoformat() for d in frame["joined"]]
        frame["last_seen"] = frame["last_seen"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        frame.loc[frame.index[::17], "joined"] = None
    quality = quality_report(real, synthetic, SCHEMA)
    assert quality["columns"]["joined"]["score"] > 0.9
    assert quality["columns"]["last_seen"]["score"] > 0.9
    train, holdout = split_holdout(real, seed=0)
    privacy = privacy_report(train, holdout, synthetic, SCHEMA)
    assert 0.4 < privacy["dcr_share"] < 0.6
    result = ml_utility(train.drop(columns=["customer_id", "email"]), holdout, synthetic)
    assert result["target"] == "segment" and result["score_synthetic"] > 0.7


def test_html_report_is_self_contained_and_names_every_column(
    tmp_path, real: pd.DataFrame, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, holdout = split
    synthetic = population(2_000, seed=21)
    quality = quality_report(real, synthetic, SCHEMA)
    privacy = privacy_report(train, holdout, synthetic, SCHEMA)
    ml = ml_utility(train, holdout, synthetic, schema=SCHEMA)
    diagnostic = diagnostic_report(real, synthetic, SCHEMA)
    verdict = privacy_verdict(privacy, PrivacyThresholds())
    path = write_report(
        tmp_path / "reports" / "customers.html", real, synthetic, quality, privacy, ml,
        schema=SCHEMA, diagnostic=diagnostic, verdict=verdict,
    )  # fmt: skip
    page = path.read_text(encoding="utf-8")
    for column in SCHEMA.columns:
        assert f">{column.name}<" in page, column.name
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 1 + 7 + 1  # scores, one per modelled column, the correlation difference
    assert all(base64.b64decode(image).startswith(PNG) for image in images)
    assert not re.search(r"(src|href)=['\"]?(https?:|//|/)", page)  # nothing fetched from outside
    assert "<script" not in page
    assert "passes" in page and f"{privacy['dcr_share']:.3f}" in page
    assert "correlation" in page.lower() and ml["target"] in page


def test_report_images_are_small_pngs(real: pd.DataFrame) -> None:
    synthetic = population(2_000, seed=21)
    quality = quality_report(real, synthetic, SCHEMA)
    images = report_images(real, synthetic, quality, schema=SCHEMA)
    assert set(images) == {"scores.png", "distributions.png", "correlation_difference.png"}
    for name, picture in images.items():
        assert picture.startswith(PNG), name
        assert len(picture) < 150_000, (name, len(picture))
