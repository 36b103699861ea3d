"""Validation of synthetic image sets: quality, fidelity and privacy reports, computed for real on
constructed images, feature tables and embedding clouds (no stand-ins for our own code)."""

from __future__ import annotations

import io
import json

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFilter

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.imagesets.records import ImageRecord
from synth_pipelines.core.imagesets.validate import (
    FID_NO_WEIGHTS,
    NUMERIC_FEATURES,
    CheckReport,
    Thresholds,
    dcr_share,
    fidelity_report,
    frechet_distance,
    kernel_inception_distance,
    nearest_cosine,
    nearest_hamming,
    normalised_wasserstein,
    privacy_report,
    quality_report,
)

SIZE = 64


# --- constructed inputs -----------------------------------------------------------------------


def shapes_image(seed: int, size: int = SIZE) -> Image.Image:
    """A distinct random picture: coloured rectangles and ellipses over a background, with
    sensor-like noise so it is sharp."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(40, 215, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, size - 8, 2))
        x1, y1 = x0 + int(rng.integers(8, size // 2)), y0 + int(rng.integers(8, size // 2))
        colour = tuple(int(v) for v in rng.integers(20, 235, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 1, 254).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixel_embedding(image: Image.Image) -> np.ndarray:
    """A small real embedding of what an image shows: its 8x8 colour thumbnail, centred, unit."""
    thumb = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BOX), np.float32)
    vector = thumb.reshape(-1) - thumb.mean()
    return vector / np.linalg.norm(vector)


def features_table(images: dict[str, Image.Image]) -> tuple[pd.DataFrame, np.ndarray]:
    """The features-table columns privacy reads (key, ok, error, phash) and aligned embeddings."""
    table = pd.DataFrame(
        {
            "key": list(images),
            "ok": True,
            "error": None,
            "phash": [str(imagehash.phash(im.convert("L"))) for im in images.values()],
        }
    )
    return table, np.stack([pixel_embedding(im) for im in images.values()])


def profile_table(n: int, seed: int, brightness_shift: float = 0.0) -> pd.DataFrame:
    """A features table of profile statistics drawn from fixed distributions."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "key": [f"img/{seed}/{i:04d}.png" for i in range(n)],
            "ok": True,
            "error": None,
            "width": 64,
            "height": 64,
            "aspect": 1.0,
            "brightness": rng.normal(120, 20, n) + brightness_shift,
            "contrast": rng.normal(50, 8, n),
            "colourfulness": rng.gamma(4.0, 8.0, n),
            "sharpness": rng.lognormal(5.0, 0.4, n),
            "noise": rng.uniform(1.0, 4.0, n),
            "phash": [f"{int(h):016x}" for h in rng.integers(0, 2**63, n, dtype=np.int64)],
            "faces": 0,
            "face_boxes": "[]",
        }
    )
    return table


def cloud(n: int, seed: int, shift: float = 0.0, d: int = 32) -> np.ndarray:
    """Unit embeddings from a fixed mixture of 8 Gaussians; `shift` moves every point along one
    axis (in units of the clusters' spread)."""
    centres = np.random.default_rng(1234).normal(size=(8, d))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, 8, n)] + rng.normal(0, 0.7, (n, d))
    points[:, 0] += shift * 0.7
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


# --- quality ----------------------------------------------------------------------------------


def test_a_clean_set_passes_quality() -> None:
    records = [ImageRecord(f"ok/{i}.png", encode(shapes_image(i))) for i in range(30)]
    report = quality_report(records)
    assert report.passed is True, report.messages
    assert report.metrics["images"] == 30
    assert report.metrics["bad_images"] == 0
    assert report.metrics["duplicate_images"] == 0
    assert report.failing == []


def test_each_bad_image_is_flagged_with_its_reason() -> None:
    good = [ImageRecord(f"ok/{i}.png", encode(shapes_image(i))) for i in range(30)]
    clipped = np.asarray(shapes_image(100), np.uint8).copy()
    clipped[:, : SIZE // 3] = 255  # a third of the pixels blown out; mean stays moderate
    bad = [
        ImageRecord(
            "bad/blurred.png", encode(shapes_image(101).filter(ImageFilter.GaussianBlur(3)))
        ),
        ImageRecord("bad/black.png", encode(Image.new("RGB", (SIZE, SIZE)))),
        ImageRecord("bad/clipped.png", encode(Image.fromarray(clipped))),
        ImageRecord("bad/duplicate.jpg", encode(shapes_image(0), "JPEG", quality=90)),
        ImageRecord("bad/broken.png", b"\x89PNG not really"),
    ]
    report = quality_report(good + bad)

    assert report.passed is False
    assert set(report.failing) == {r.key for r in bad}
    reasons = report.reasons
    assert any(r.startswith("blurry: variance of Laplacian") for r in reasons["bad/blurred.png"])
    assert not any(r.startswith("clipped") for r in reasons["bad/blurred.png"])
    assert any(r.startswith("too dark: mean gray level 0.0") for r in reasons["bad/black.png"])
    assert any(r.startswith("clipped: ") for r in reasons["bad/clipped.png"])
    assert not any(r.startswith(("too", "blurry")) for r in reasons["bad/clipped.png"])
    assert reasons["bad/duplicate.jpg"] == [
        next(r for r in reasons["bad/duplicate.jpg"] if r.startswith("near-duplicate of ok/0.png"))
    ]
    assert reasons["bad/broken.png"][0].startswith("not decodable")
    assert report.metrics["bad_images"] == 4
    assert report.metrics["duplicate_images"] == 1
    assert set(report.failed_checks) == {"bad_share", "duplicate_share"}
    assert any("bad_share 0.1143 > 0.01 allowed (max_bad_share)" in m for m in report.messages)
    assert any(
        m.startswith("blurry: 2 of 35 images, e.g. bad/blurred.png") for m in report.messages
    )
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["reasons"] == reasons


def test_quality_limits_come_from_the_thresholds() -> None:
    blurred = shapes_image(5).filter(ImageFilter.GaussianBlur(3))
    records = [ImageRecord("a.png", encode(blurred))]
    assert quality_report(records).passed is False
    lenient = Thresholds(min_blur=0.0)
    report = quality_report(records, lenient)
    assert report.passed is True
    assert report.thresholds["min_blur"] == 0.0


def test_an_empty_set_is_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="no records"):
        quality_report([])


# --- fidelity ---------------------------------------------------------------------------------


def test_two_samples_of_one_distribution_pass_fidelity() -> None:
    real, synth = profile_table(300, 1), profile_table(300, 2)
    report = fidelity_report(real, synth, cloud(300, 1), cloud(300, 2))
    assert report.passed is True, report.messages
    for feature in NUMERIC_FEATURES:
        assert report.metrics[f"wasserstein.{feature}"] < 0.25
        assert report.metrics[f"ks.{feature}"] < 0.2
    assert report.metrics["precision"] > 0.8 and report.metrics["recall"] > 0.8
    assert abs(report.metrics["kid"]) < 0.02


def test_shifted_brightness_fails_for_brightness_only() -> None:
    real, synth = profile_table(300, 1), profile_table(300, 2, brightness_shift=20.0)
    report = fidelity_report(real, synth, cloud(300, 1), cloud(300, 2))
    assert report.passed is False
    assert report.failed_checks == ["wasserstein.brightness", "ks.brightness"]
    assert report.metrics["wasserstein.brightness"] > 0.5
    wasserstein, ks = report.messages
    assert wasserstein.startswith("wasserstein.brightness ")
    assert "> 0.25 allowed (max_wasserstein['brightness'], in real IQRs)" in wasserstein
    assert ks.startswith("ks.brightness ") and "> 0.2 allowed (max_ks)" in ks
    assert report.blocking is False


def test_wasserstein_is_normalised_by_the_real_spread() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, 20_000)
    # A shift by one IQR (1.349 sigma for a normal) is a distance of 1.
    assert normalised_wasserstein(real, real + 1.349) == pytest.approx(1.0, abs=0.02)
    # A constant feature (every width 64) compares relative to its value.
    assert normalised_wasserstein(np.full(50, 64.0), np.full(50, 128.0)) == pytest.approx(1.0)


def test_identical_clouds_give_precision_and_recall_of_one() -> None:
    emb = cloud(200, 3)
    table = profile_table(200, 3)
    report = fidelity_report(table, table, emb, emb)
    for name in ("precision", "recall", "coverage"):
        assert report.metrics[name] == pytest.approx(1.0)
    assert report.metrics["density"] == pytest.approx(1.0, abs=0.1)


def test_disjoint_clouds_give_precision_and_recall_of_zero() -> None:
    real = cloud(200, 4)
    far = np.zeros_like(real)
    far[:, -1] = 1.0  # all other directions: one tight cloud at a pole no real point is near
    far += np.random.default_rng(5).normal(0, 0.05, far.shape)
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    report = fidelity_report(profile_table(200, 4), profile_table(200, 5), real, far)
    assert report.metrics["precision"] == pytest.approx(0.0, abs=0.01)
    assert report.metrics["recall"] == pytest.approx(0.0, abs=0.01)
    assert report.metrics["coverage"] == pytest.approx(0.0, abs=0.01)
    assert {"precision", "recall", "density", "coverage", "kid"} <= set(report.failed_checks)
    assert any(m.startswith("precision 0 < 0.5 required (min_precision)") for m in report.messages)


def test_kid_is_about_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    same, same_std = kernel_inception_distance(cloud(500, 6), cloud(500, 7))
    shifted, _ = kernel_inception_distance(cloud(500, 6), cloud(500, 7, shift=3.0))
    assert abs(same) < 0.02
    assert 0 < same_std < 0.05
    assert shifted > 0.15
    # Rows are re-normalised: a scaled copy of the embeddings gives the same KID.
    assert kernel_inception_distance(3 * cloud(500, 6), cloud(500, 7))[0] == pytest.approx(same)


def test_fid_is_skipped_with_the_reason_and_never_faked() -> None:
    real, synth = profile_table(50, 1), profile_table(50, 2)
    report = fidelity_report(real, synth, None, None)
    assert report.skipped["fid"] == FID_NO_WEIGHTS and "fid" not in report.metrics
    reason = "FID skipped: the real set was profiled without Inception features"
    report = fidelity_report(real, synth, None, None, inception=reason)
    assert report.skipped["fid"] == reason and "fid" not in report.metrics
    report = fidelity_report(real, synth, None, None, inception=(cloud(1, 1), cloud(5, 2)))
    assert report.skipped["fid"] == "FID needs 2 images per set (real 1, synthetic 5)"
    assert report.skipped["kid"] == "no embeddings given for the real and the synthetic set"


def test_frechet_distance_matches_the_gaussian_formula() -> None:
    rng = np.random.default_rng(3)
    dims = 8
    real = rng.normal(0.0, 1.0, (20_000, dims))
    shift = np.full(dims, 0.5)
    synth = shift + rng.normal(0.0, 2.0, (20_000, dims))
    # |mu_r - mu_s|^2 + Tr(I + 4I - 2 * 2I) = 8 * 0.25 + 8
    assert frechet_distance(real, synth) == pytest.approx(10.0, rel=0.03)
    assert frechet_distance(real, rng.normal(0.0, 1.0, (20_000, dims))) < 0.05
    tables = profile_table(50, 1), profile_table(50, 2)
    report = fidelity_report(*tables, None, None, inception=(real, synth))
    assert report.metrics["fid"] == pytest.approx(frechet_distance(real, synth))
    assert not any(m.startswith("fid ") for m in report.messages)  # 10 <= max_fid 50
    strict = Thresholds(max_fid=5.0)
    report = fidelity_report(*tables, None, None, strict, inception=(real, synth))
    assert any(m.startswith("fid 10") and "(max_fid)" in m for m in report.messages)


def test_fidelity_reads_only_ok_rows_and_checks_alignment() -> None:
    real, synth = profile_table(100, 1), profile_table(100, 2)
    synth.loc[:9, "ok"] = False
    synth.loc[:9, "brightness"] = 10_000.0  # failed rows' values must not count
    report = fidelity_report(real, synth, cloud(100, 1), cloud(90, 2))
    assert report.metrics["synthetic_images"] == 90
    assert report.metrics["wasserstein.brightness"] < 0.25
    with pytest.raises(InvalidInputError, match="100 rows but the synthetic features table has 90"):
        fidelity_report(real, synth, cloud(100, 1), cloud(100, 2))
    with pytest.raises(InvalidInputError, match="no column 'noise'"):
        fidelity_report(real, synth.drop(columns="noise"), None, None)


def test_a_report_is_json() -> None:
    report = fidelity_report(profile_table(80, 1), profile_table(80, 2), cloud(80, 1), cloud(80, 2))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["name"] == "fidelity"
    assert data["thresholds"]["max_wasserstein"]["brightness"] == 0.25
    assert isinstance(data["metrics"]["kid"], float)
    assert CheckReport("x", None, skipped_reason="why").summary() == "x: skipped (why)"


# --- privacy ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_images() -> dict[str, Image.Image]:
    return {f"real/{i:03d}.png": shapes_image(i) for i in range(120)}


def fresh_images(n: int, first_seed: int = 10_000) -> dict[str, Image.Image]:
    return {f"synth/{i:03d}.png": shapes_image(first_seed + i) for i in range(n)}


def test_copies_of_real_images_are_a_blocking_failure_naming_them(real_images) -> None:
    synth = fresh_images(40)
    synth["synth/exact.png"] = real_images["real/003.png"]
    resized = real_images["real/007.png"].resize((80, 80), Image.Resampling.LANCZOS)
    synth["synth/resized.jpg"] = Image.open(io.BytesIO(encode(resized, "JPEG", quality=80)))
    real_table, real_emb = features_table(real_images)
    synth_table, synth_emb = features_table(synth)

    report = privacy_report(real_table, synth_table, real_emb, synth_emb)

    assert report.passed is False and report.blocking is True
    assert report.failing == ["synth/exact.png", "synth/resized.jpg"]
    assert report.metrics["copies"] == 2
    assert report.reasons["synth/exact.png"][0] == (
        "copy of real real/003.png: phash distance 0 <= 2"
    )
    assert any(
        r.startswith("copy of real real/007.png: embedding cosine distance")
        for r in report.reasons["synth/resized.jpg"]
    )
    assert report.failed_checks == ["copy_share"]
    (message,) = report.messages
    assert message.startswith("copy_share 0.04762 > 0 allowed (max_copy_share): 2 synthetic")
    assert "synth/exact.png, synth/resized.jpg" in message


def test_copies_within_both_limits_when_asked(real_images) -> None:
    synth = fresh_images(20) | {"synth/exact.png": real_images["real/003.png"]}
    real_table, real_emb = features_table(real_images)
    synth_table, synth_emb = features_table(synth)
    # A distinct image whose phash happens to equal a real one's (a homogeneous set's layout).
    synth_table.loc[0, "phash"] = real_table["phash"][9]
    either = privacy_report(real_table, synth_table, real_emb, synth_emb)
    assert set(either.failing) == {"synth/000.png", "synth/exact.png"}
    both = privacy_report(
        real_table, synth_table, real_emb, synth_emb, thresholds=Thresholds(copy_requires_both=True)
    )
    assert both.failing == ["synth/exact.png"]
    assert both.thresholds["copy_requires_both"] is True


def test_a_clean_set_passes_privacy(real_images) -> None:
    real_table, real_emb = features_table(real_images)
    synth_table, synth_emb = features_table(fresh_images(40))
    report = privacy_report(real_table, synth_table, real_emb, synth_emb)
    assert report.passed is True, report.messages
    assert report.metrics["copies"] == 0
    assert report.metrics["phash_distance_min"] > 2
    assert report.metrics["embedding_distance_min"] > 0.02
    assert report.skipped["dcr_share"] == (
        "DCR skipped: no real holdout given (holdout_emb or holdout)"
    )
    assert "nearest_real_share" in report.skipped  # 40 images: too few to judge


def test_copies_are_found_by_phash_without_embeddings(real_images) -> None:
    real_table, _ = features_table(real_images)
    synth = fresh_images(10) | {"synth/copy.png": real_images["real/050.png"]}
    synth_table, _ = features_table(synth)
    report = privacy_report(real_table, synth_table, None, None)
    assert report.failing == ["synth/copy.png"] and report.blocking is True
    assert "embedding_distance" in report.skipped


def test_synthetic_images_nearer_real_ones_than_reals_to_each_other_fail() -> None:
    real_emb, synth_emb = cloud(200, 8), cloud(200, 9)
    real, synth = profile_table(200, 8), profile_table(200, 9)
    clean = privacy_report(real, synth, real_emb, synth_emb)
    assert clean.passed is True, clean.messages
    assert clean.metrics["nearest_real_share"] < 0.1
    assert clean.notes["nearest_real_share"] == "embedding cosine distance"

    # A generator that memorised: a quarter of its outputs are real images moved a little, no
    # copy by either limit (cosine distance ~0.05 > 0.02) but nearer than reals to each other.
    rng = np.random.default_rng(8)
    moved = real_emb[:50] + rng.normal(0, 0.06, (50, real_emb.shape[1]))
    synth_emb[:50] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    report = privacy_report(real, synth, real_emb, synth_emb)
    assert report.metrics["copies"] == 0
    assert report.failed_checks == ["nearest_real_share"]
    assert report.blocking is False
    assert report.metrics["nearest_real_share"] >= 0.25
    assert set(report.failing) <= set(synth["key"][:50]) and len(report.failing) >= 45
    assert report.reasons[report.failing[0]][0].startswith("near real img/8/")
    assert "> 0.1 allowed (max_nearest_real_share)" in report.messages[0]


def test_dcr_share_with_a_holdout(real_images) -> None:
    train_table, train_emb = features_table(real_images)
    holdout_images = {f"holdout/{i:03d}.png": shapes_image(20_000 + i) for i in range(120)}
    holdout_table, holdout_emb = features_table(holdout_images)
    fresh_table, fresh_emb = features_table(fresh_images(120))

    fair = privacy_report(train_table, fresh_table, train_emb, fresh_emb, holdout_emb=holdout_emb)
    assert fair.passed is True, fair.messages
    assert 0.4 < fair.metrics["dcr_share"] < 0.6
    assert fair.notes["dcr_share"] == "embedding cosine distance"

    # A generator that memorised its training images: each output is a training image moved a
    # little (no copy by either limit), so it sits closer to the training set than to holdout.
    rng = np.random.default_rng(9)
    moved = train_emb + rng.normal(0, 0.025, train_emb.shape).astype(np.float32)
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    memorised = fresh_table.assign(key=[f"mem/{i}" for i in range(120)])
    report = privacy_report(train_table, memorised, train_emb, moved, holdout_emb=holdout_emb)
    assert report.metrics["copies"] == 0
    assert report.metrics["dcr_share"] < 0.05
    assert "dcr_share" in report.failed_checks
    assert any("< 0.45 required (min_dcr_share)" in m for m in report.messages)
    assert report.metrics["dcr_below_holdout_p5_share"] > 0.9
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["notes"] == report.notes

    # With only the holdout's features table, DCR runs on perceptual hashes.
    by_hash = privacy_report(train_table, fresh_table, None, None, holdout=holdout_table)
    assert by_hash.notes["dcr_share"] == "phash Hamming distance"
    assert 0.35 < by_hash.metrics["dcr_share"] < 0.65


def test_nearest_hamming_matches_a_direct_count_and_is_chunked(monkeypatch) -> None:
    rng = np.random.default_rng(11)
    queries = rng.integers(0, 2**63, 300, dtype=np.int64).view(np.uint64) * np.uint64(2)
    reference = rng.integers(0, 2**63, 70, dtype=np.int64).view(np.uint64)
    expected = [min(bin(int(q) ^ int(r)).count("1") for r in reference) for q in queries]
    monkeypatch.setattr("synth_pipelines.core.imagesets.validate._CHUNK_CELLS", 500)
    distance, index = nearest_hamming(queries, reference)
    assert distance.tolist() == expected
    own, _ = nearest_hamming(reference, reference, exclude=np.arange(70))
    assert own.tolist() == [
        min(bin(int(a) ^ int(b)).count("1") for j, b in enumerate(reference) if j != i)
        for i, a in enumerate(reference)
    ]
    assert all(
        bin(int(q) ^ int(reference[i])).count("1") == d
        for q, i, d in zip(queries, index, distance, strict=True)
    )


def test_nearest_cosine_and_dcr_share_directly() -> None:
    train, holdout = cloud(100, 12), cloud(100, 13)
    distance, index = nearest_cosine(train[:10], train)
    assert index.tolist() == list(range(10)) and distance.max() < 1e-6
    _, other = nearest_cosine(train[:10], train, exclude=np.arange(10))
    assert all(i != j for i, j in enumerate(other))
    with pytest.raises(InvalidInputError, match="one reference index per query"):
        nearest_cosine(train[:10], train, exclude=np.arange(3))
    share, below = dcr_share(train, train, holdout, nearest_cosine)
    assert share == 0.0 and below == 1.0


def test_privacy_input_errors_name_the_problem() -> None:
    real, synth = profile_table(20, 1), profile_table(20, 2)
    synth.loc[3, "phash"] = "xyz"
    with pytest.raises(InvalidInputError, match=r"phash of 'img/2/0003\.png' is 'xyz'"):
        privacy_report(real, synth, None, None)
    with pytest.raises(InvalidInputError, match="no ok rows"):
        privacy_report(real.assign(ok=False), profile_table(20, 2), None, None)
