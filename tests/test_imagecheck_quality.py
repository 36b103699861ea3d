"""Image quality checks and near-duplicate detection, on real simulator faces and real bytes."""

from __future__ import annotations

import io
import itertools
import time

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import ALL_BUCKETS
from synth_pipelines.core.faces.candidates import perceptual_hash
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.imagecheck.quality import (
    DEFAULT_THRESHOLDS,
    QualityThresholds,
    measure_image,
    near_duplicate_pairs,
    near_duplicate_rate,
    quality_problems,
)


def _encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def faces() -> list[Image.Image]:
    """Two simulator faces per bucket, 256 px: 20 distinct faces."""
    simulator = ProceduralFaceSimulator()
    return [face.image for bucket in ALL_BUCKETS for face in simulator.generate(bucket, 2, 3)]


def _problems(image: Image.Image, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> list[str]:
    return quality_problems(measure_image(_encode(image)), thresholds)


def test_simulator_faces_pass_the_default_thresholds(faces):
    for image in faces:
        quality = measure_image(_encode(image))
        assert quality.decodable and quality.error is None
        assert (quality.width, quality.height, quality.mode) == (256, 256, "RGB")
        assert quality_problems(quality, DEFAULT_THRESHOLDS) == []


def test_simulator_faces_survive_jpeg_reencoding(faces):
    # Re-encoding smooths the simulator's grain: the blur threshold must leave room for it.
    for image in faces:
        quality = measure_image(_encode(image, "JPEG", quality=85))
        assert quality_problems(quality, DEFAULT_THRESHOLDS) == []


def test_blurred_face_fails_as_blurry_and_only_that(faces):
    sharp = measure_image(_encode(faces[0]))
    blurred = measure_image(_encode(faces[0].filter(ImageFilter.GaussianBlur(4))))
    assert blurred.blur < sharp.blur / 20
    problems = quality_problems(blurred, DEFAULT_THRESHOLDS)
    assert len(problems) == 1
    assert problems[0].startswith("blurry: variance of Laplacian ")
    assert problems[0].endswith(f"< {DEFAULT_THRESHOLDS.min_blur:g}")


def test_almost_black_image_is_too_dark(faces):
    dark = ImageEnhance.Brightness(faces[1]).enhance(0.06)
    problems = _problems(dark)
    assert any(p.startswith("too dark: mean gray level") for p in problems), problems
    assert not any(p.startswith("too bright") for p in problems)


def test_almost_white_image_is_too_bright(faces):
    white = Image.blend(faces[2], Image.new("RGB", faces[2].size, "white"), 0.95)
    problems = _problems(white)
    assert any(p.startswith("too bright: mean gray level") for p in problems), problems
    assert not any(p.startswith("too dark") for p in problems)


def test_clipped_highlights_fail_on_their_own(faces):
    blown = faces[3].copy()
    blown.paste((255, 255, 255), (0, 0, 256, 64))  # a quarter of the frame burnt out
    quality = measure_image(_encode(blown))
    assert quality.clipped == pytest.approx(0.25, abs=0.01)
    assert quality_problems(quality, DEFAULT_THRESHOLDS) == [
        f"clipped: {quality.clipped:.1%} of pixels at 0 or 255 > 5.0% allowed"
    ]


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40],
    ids=["empty", "text", "png-signature-only"],
)
def test_garbage_bytes_are_not_decodable(data):
    quality = measure_image(data)
    assert not quality.decodable
    assert quality.error
    assert quality_problems(quality, DEFAULT_THRESHOLDS) == [f"not decodable: {quality.error}"]


def test_truncated_files_are_not_decodable(faces):
    for fmt in ("PNG", "JPEG", "WEBP"):
        data = _encode(faces[4], fmt)
        quality = measure_image(data[: len(data) // 2])
        assert not quality.decodable, fmt
        assert quality_problems(quality, DEFAULT_THRESHOLDS)[0].startswith("not decodable: ")


def test_wrong_size_and_wrong_mode_are_named(faces):
    expecting_512 = QualityThresholds(40, 20, 235, 0.05, expected_size=(512, 512))
    assert _problems(faces[5], expecting_512) == ["wrong size: 256x256, expected 512x512"]
    assert _problems(faces[5].convert("L")) == ["wrong mode: L, expected RGB"]
    assert _problems(faces[5].convert("RGBA")) == ["wrong mode: RGBA, expected RGB"]
    any_mode = QualityThresholds(40, 20, 235, 0.05, expected_mode=None)
    assert _problems(faces[5].convert("L"), any_mode) == []


def test_exif_orientation_is_applied():
    landscape = Image.new("RGB", (300, 200), (120, 90, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    quality = measure_image(_encode(landscape, "JPEG", exif=exif.tobytes()))
    assert (quality.width, quality.height) == (200, 300)


def test_measure_image_takes_a_few_milliseconds(faces):
    datas = [_encode(image) for image in faces]
    measure_image(datas[0])
    started = time.perf_counter()
    for data in datas:
        measure_image(data)
    per_image = (time.perf_counter() - started) / len(datas)
    assert per_image < 0.02, f"{per_image * 1000:.1f} ms per 256 px image"


def test_planted_near_duplicates_are_found_and_distinct_faces_are_not(faces):
    reencoded = Image.open(io.BytesIO(_encode(faces[3], "JPEG", quality=85)))
    brightened = ImageEnhance.Brightness(faces[6]).enhance(1.1)
    hashes = [perceptual_hash(image) for image in [*faces, reencoded, brightened]]
    pairs = near_duplicate_pairs(np.array(hashes, dtype=np.uint64), max_distance=4)
    assert [(i, j) for i, j, _ in pairs] == [(3, 20), (6, 21)]
    assert all(0 <= distance <= 4 for _, _, distance in pairs)
    assert near_duplicate_rate(len(hashes), pairs) == pytest.approx(4 / 22)


def test_near_duplicate_pairs_agree_with_brute_force_across_blocks():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**64 - 1, 150, dtype=np.uint64, endpoint=True)
    # Near copies of the base hashes, some more than one block (256 rows) apart.
    flips = np.uint64(1) << rng.integers(0, 64, (450, 3)).astype(np.uint64)
    copies = base[rng.integers(0, 150, 450)] ^ flips[:, 0] ^ flips[:, 1] ^ flips[:, 2]
    hashes = np.concatenate([base, copies])
    expected = [
        (i, j, d)
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if (d := int(hashes[i] ^ hashes[j]).bit_count()) <= 3
    ]
    assert len(expected) > 450
    assert near_duplicate_pairs(hashes, 3) == expected
    # The same hashes as a signed BIGINT column returns them, and as Python ints.
    assert near_duplicate_pairs(hashes.view(np.int64), 3) == expected
    assert near_duplicate_pairs([int(h) for h in hashes], 3) == expected


def test_ten_thousand_hashes_take_about_a_second():
    hashes = np.random.default_rng(1).integers(0, 2**64 - 1, 10_000, np.uint64, endpoint=True)
    hashes[9_999] = hashes[0] ^ np.uint64(0b101)  # one planted pair, 2 bits apart
    started = time.perf_counter()
    pairs = near_duplicate_pairs(hashes, 4)
    elapsed = time.perf_counter() - started
    assert pairs == [(0, 9_999, 2)]
    assert elapsed < 2.0, f"{elapsed:.2f} s for 10,000 hashes"


def test_near_duplicate_rate_counts_images_in_any_pair():
    assert near_duplicate_rate(10, [(0, 1, 2), (1, 2, 0)]) == pytest.approx(0.3)
    assert near_duplicate_rate(10, []) == 0.0
    assert near_duplicate_rate(0, []) == 0.0
    with pytest.raises(InvalidInputError, match=r"outside 0\.\.4"):
        near_duplicate_rate(5, [(1, 7, 0)])


@pytest.mark.parametrize("bad", [-1, 65, 2.5, True])
def test_bad_max_distance_is_rejected(bad):
    with pytest.raises(InvalidInputError, match="max_distance"):
        near_duplicate_pairs(np.zeros(3, np.uint64), bad)


def test_hashes_must_be_a_flat_list():
    with pytest.raises(InvalidInputError, match="1-D"):
        near_duplicate_pairs(np.zeros((2, 2), np.uint64), 4)
    with pytest.raises(InvalidInputError, match="64-bit integer"):
        near_duplicate_pairs(np.zeros(3, np.float64), 4)
