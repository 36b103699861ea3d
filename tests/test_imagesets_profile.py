"""Image features, the streamed profile and its report, on images made here with PIL: measured
values on constructed images, failures counted with reasons, near-duplicates, embeddings, flat
memory in the set's size, and the report's files."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from synth_pipelines.core.errors import InvalidInputError, MissingBackendError
from synth_pipelines.core.imagesets import features
from synth_pipelines.core.imagesets.features import (
    EMBEDDING_DIM,
    NUMERIC_FEATURES,
    embed,
    measure,
    safe_open,
)
from synth_pipelines.core.imagesets.profile import (
    cluster_ids,
    load_profile,
    near_duplicate_pairs,
    popcount,
    profile_images,
)
from synth_pipelines.core.imagesets.records import ImageRecord
from synth_pipelines.core.imagesets.report import write_report
from tests import face_photos


def _bytes(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _record(image: Image.Image, key: str = "x.png", fmt: str = "PNG", **options) -> ImageRecord:
    return ImageRecord(key, _bytes(image, fmt, **options))


def _scene(seed: int, side: int = 64) -> Image.Image:
    """A textured colour image that differs with the seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    f = rng.uniform(1, 6, size=3)
    channels = [np.sin(2 * np.pi * (f[i] * x + f[(i + 1) % 3] * y) + seed) for i in range(3)]
    pixels = np.stack(channels, axis=2) * 100 + 128 + rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (and whose data holds almost none)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))  # fmt: skip


GREY = Image.new("RGB", (64, 48), (128, 128, 128))


# --- features on constructed images ----------------------------------------------------------


def test_a_flat_grey_image_measures_flat() -> None:
    row = measure(_record(GREY), ocr=False)
    assert (row["width"], row["height"], row["aspect"]) == (64, 48, 64 / 48)
    assert (row["mode"], row["channels"], row["format"]) == ("RGB", 3, "PNG")
    assert row["brightness"] == pytest.approx(128, abs=0.5)
    assert row["contrast"] == pytest.approx(0, abs=1e-3)
    assert row["sharpness"] == pytest.approx(0, abs=1e-3)
    assert row["noise"] == pytest.approx(0, abs=1e-3)
    assert row["colourfulness"] == pytest.approx(0, abs=1e-3)
    assert row["jpeg_quality"] is None
    assert json.loads(row["dominant_colours"]) == [{"hex": "#808080", "share": 1.0}]
    assert len(row["phash"]) == 16 and int(row["phash"], 16) >= 0
    assert row["exif"] is None and row["has_gps"] is False
    assert row["faces"] is None and row["text"] is None
    assert set(NUMERIC_FEATURES) <= set(row)


def test_noise_sharpness_and_colour_rank_images() -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(128 + rng.normal(0, 10, (96, 96)), 0, 255).astype(np.uint8)
    noisy_row = measure(_record(Image.fromarray(noisy).convert("RGB")), ocr=False)
    flat_row = measure(_record(GREY), ocr=False)
    assert noisy_row["noise"] > flat_row["noise"] + 5
    assert noisy_row["noise"] == pytest.approx(10, rel=0.2)  # the sigma it was made with

    scene = _scene(1, side=96)
    sharp = measure(_record(scene), ocr=False)
    blurred = measure(_record(scene.filter(ImageFilter.GaussianBlur(3))), ocr=False)
    assert sharp["sharpness"] > 5 * blurred["sharpness"]

    red = Image.new("RGB", (32, 32), (230, 10, 10))
    saturated = Image.new("RGB", (32, 32))
    saturated.paste(red, (0, 0))
    saturated.paste(Image.new("RGB", (16, 32), (10, 10, 230)), (16, 0))
    colour_row = measure(_record(saturated), ocr=False)
    assert colour_row["colourfulness"] > 50 > flat_row["colourfulness"]
    colours = json.loads(colour_row["dominant_colours"])
    found = sorted(tuple(int(c["hex"][i : i + 2], 16) for i in (1, 3, 5)) for c in colours[:2])
    for got, want in zip(found, [(10, 10, 230), (230, 10, 10)], strict=True):
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 8, found
    assert [c["share"] for c in colours[:2]] == pytest.approx([0.5, 0.5], abs=0.07)


@pytest.mark.parametrize("quality", [50, 90])
def test_jpeg_quality_is_estimated_from_the_tables(quality: int) -> None:
    row = measure(_record(_scene(2), "x.jpg", "JPEG", quality=quality), ocr=False)
    assert row["format"] == "JPEG"
    assert abs(row["jpeg_quality"] - quality) <= 10


def test_gps_exif_is_found() -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0110] = "Model 7"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    row = measure(_record(_scene(3), "gps.jpg", "JPEG", exif=exif), ocr=False)
    assert row["has_gps"] is True
    assert json.loads(row["exif"]) == {"Make": "TestCam", "Model": "Model 7", "GPSTags": 4}
    plain = Image.Exif()
    plain[0x010F] = "TestCam"
    assert measure(_record(_scene(3), "x.jpg", "JPEG", exif=plain), ocr=False)["has_gps"] is False


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_every_mode_is_measured(mode: str) -> None:
    image = _scene(4).convert(mode) if mode != "I;16" else Image.new("I;16", (40, 30), 3000)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    row, vector = features.analyse(_record(image, fmt=fmt), ocr=False)
    assert row["mode"] == mode and row["width"] == image.width
    assert vector.shape == (EMBEDDING_DIM,)


@pytest.mark.parametrize("size", [(1, 1), (2, 300), (300, 2)])
def test_tiny_and_thin_images_are_measured(size: tuple[int, int]) -> None:
    row, vector = features.analyse(_record(Image.new("RGB", size, (200, 30, 30))), ocr=False)
    assert (row["width"], row["height"]) == size and row["sharpness"] == 0.0
    assert np.isfinite([row[name] for name in NUMERIC_FEATURES]).all()
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)


def test_faces_are_found_only_when_asked() -> None:
    photo = face_photos.astronaut().resize((256, 256))
    record = _record(photo, "astronaut.jpg", "JPEG", quality=90)
    assert measure(record, ocr=False)["faces"] is None
    row = measure(record, faces=True, ocr=False)
    assert row["faces"] == 1
    [[x, y, w, h]] = json.loads(row["face_boxes"])
    assert 60 < x + w / 2 < 160 and 20 < y + h / 2 < 120 and 30 < w < 140  # her face
    # A large JPEG is decoded reduced; its boxes are still in its own pixels.
    large = measure(_record(photo.resize((2048, 2048)), "big.jpg", "JPEG"), faces=True, ocr=False)
    scaled = [[v / 8 for v in box] for box in json.loads(large["face_boxes"])]
    assert any(max(abs(a - b) for a, b in zip(box, (x, y, w, h), strict=True)) < 12
               for box in scaled), scaled  # fmt: skip


def _text_image() -> Image.Image:
    image = Image.new("RGB", (360, 90), "white")
    ImageDraw.Draw(image).text((12, 18), "HELLO 2026", fill="black",
                               font=ImageFont.load_default(size=44))  # fmt: skip
    return image


def test_text_is_read_when_tesseract_is_there() -> None:
    available, reason = features.tesseract_available()
    if not available:
        pytest.skip(reason)
    row = measure(_record(_text_image()))  # ocr=None: automatic
    assert "HELLO" in row["text"] and row["text_skipped"] is None
    assert measure(_record(_text_image()), ocr=False)["text_skipped"] == "OCR turned off"


def test_without_tesseract_ocr_is_skipped_with_the_reason(monkeypatch, tmp_path) -> None:
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "tesseract-not-installed")
    row = measure(_record(_text_image()))
    assert row["text"] is None
    assert "tesseract binary (tesseract-not-installed) is not found" in row["text_skipped"]
    with pytest.raises(MissingBackendError, match=r"OCR was asked for but the tesseract"):
        measure(_record(_text_image()), ocr=True)
    with pytest.raises(MissingBackendError, match=r"OCR was asked for"):
        profile_images(iter([]), tmp_path / "p", ocr=True)
    profile = profile_images([_record(_text_image())], tmp_path / "auto")
    assert profile.summary["ocr"]["available"] is False
    assert "not found" in profile.summary["ocr"]["reason"]


# --- refusing bad images ---------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(InvalidInputError, match=r"refused as a decompression bomb"):
        safe_open(_png_claiming(100_000, 100_000))
    with pytest.raises(InvalidInputError, match=r"claims 9000 x 9000 = 81,000,000 pixels, over"):
        safe_open(_png_claiming(9000, 9000))
    with pytest.raises(InvalidInputError, match=r"claims 64 x 48 = 3,072 pixels, over .* 1,000"):
        safe_open(_bytes(GREY), max_pixels=1000)
    assert safe_open(_bytes(GREY)).size == (64, 48)
    # Over PIL's own limit (Image.MAX_IMAGE_PIXELS) its DecompressionBombWarning refuses it too.
    with pytest.raises(InvalidInputError, match=r"decompression bomb: Image size \(100000000 pix"):
        safe_open(_png_claiming(10_000, 10_000), max_pixels=200_000_000)


def test_corrupt_and_truncated_images_say_why() -> None:
    jpeg = _bytes(_scene(5), "JPEG")
    with pytest.raises(InvalidInputError, match=r"^truncated image"):
        safe_open(jpeg[: len(jpeg) // 2])
    with pytest.raises(InvalidInputError, match=r"^not an image"):
        safe_open(b"GIF? no, just text")
    with pytest.raises(InvalidInputError, match=r"^not an image: the file is empty"):
        safe_open(b"")
    broken = bytearray(_bytes(_scene(5)))
    broken[60:90] = b"\x00" * 30  # inside the PNG's compressed data
    with pytest.raises(InvalidInputError, match=r"^(corrupt|truncated) image"):
        safe_open(bytes(broken))


# --- the profile -----------------------------------------------------------------------------


def _scenes(count: int, side: int = 64, start: int = 0) -> Iterator[ImageRecord]:
    for i in range(start, start + count):
        image = _scene(i, side)
        yield ImageRecord(f"img/{i:05d}.jpg", _bytes(image, "JPEG", quality=85),
                          label=f"class{i % 3}")  # fmt: skip


def test_a_set_is_profiled_and_its_failures_listed(tmp_path) -> None:
    good = list(_scenes(12))
    jpeg = good[0].data
    original = _scene(100, 96)
    copy = original.resize((72, 72), Image.Resampling.LANCZOS)
    records = [
        *good[:6],
        ImageRecord("bad/corrupt.jpg", b"\xff\xd8\xff\xe0" + b"\x13" * 200),
        ImageRecord("bad/truncated.jpg", jpeg[: len(jpeg) // 2]),
        ImageRecord("bad/bomb.png", _png_claiming(100_000, 100_000)),
        *good[6:],
        ImageRecord("dup/original.png", _bytes(original)),
        ImageRecord("dup/copy.jpg", _bytes(copy, "JPEG", quality=70)),
    ]
    done: list[int] = []
    profile = profile_images(iter(records), tmp_path / "p", progress=done.append)
    assert done == list(range(1, len(records) + 1))
    summary = profile.summary
    assert summary["counts"] == {"images": 17, "ok": 14, "failed": 3}
    reasons = {f["key"]: f["reason"] for f in summary["failures"]}
    assert reasons["bad/corrupt.jpg"].startswith(("corrupt image", "truncated image"))
    assert reasons["bad/truncated.jpg"].startswith("truncated image")
    assert reasons["bad/bomb.png"].startswith("refused as a decompression bomb")
    assert summary["failures_not_listed"] == 0

    table = pq.read_table(profile.features_path)
    assert table["key"].to_pylist() == [r.key for r in records]
    assert table["ok"].to_pylist() == [not r.key.startswith("bad/") for r in records]
    assert table["error"].to_pylist()[6:9] == [reasons[r.key] for r in records[6:9]]
    ok = table.filter(table["ok"])
    assert ok["embedding_row"].to_pylist() == list(range(14))

    brightness = summary["features"]["brightness"]
    values = np.array(ok["brightness"].to_pylist())
    assert brightness["min"] == pytest.approx(values.min())
    assert brightness["p50"] == pytest.approx(np.median(values))
    assert brightness["mean"] == pytest.approx(values.mean())
    assert len(brightness["histogram"]["counts"]) == 20
    assert sum(brightness["histogram"]["counts"]) == 14
    assert summary["formats"] == {"JPEG": 13, "PNG": 1}
    assert summary["modes"] == {"RGB": 14}
    assert summary["labels"] == {"class0": 4, "class1": 4, "class2": 4}
    assert summary["unlabelled"] == 5  # the failed rows count too
    assert summary["sizes"]["most_common"][0] == {"width": 64, "height": 64, "count": 12}
    assert summary["aspects"]["square (0.95-1.05)"] == 14
    assert summary["faces"] == {"measured": False}
    ocr_ran = features.tesseract_available()[0]  # ocr=None: read text where tesseract is
    assert summary["ocr"]["ran"] is ocr_ran
    assert summary["text"]["images_read"] == (14 if ocr_ran else 0)

    duplicates = summary["near_duplicates"]
    assert {"size": 2, "keys": ["dup/original.png", "dup/copy.jpg"]} in duplicates["listed"]
    assert all(len(c["keys"]) == 2 for c in duplicates["listed"])  # the scenes are no copies

    embeddings = np.load(profile.embeddings_path)
    assert embeddings.shape == (14, EMBEDDING_DIM) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    assert list(profile.embedding_keys()) == ok["key"].to_pylist()
    again = embed(safe_open(records[-1].data))
    assert np.allclose(embeddings[-1], again, atol=1e-6)
    # A copy is nearer its original than any other image is.
    nearest = np.argsort(-(embeddings @ embeddings[-2]))[1]
    assert nearest == 13

    loaded = load_profile(tmp_path / "p")
    assert loaded.summary == json.loads(json.dumps(summary))
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "embedding_keys.jsonl", "embeddings.npy", "features.parquet", "profile.json"
    ]  # fmt: skip


def test_failures_are_listed_up_to_a_limit(tmp_path) -> None:
    records = [ImageRecord(f"junk/{i}.jpg", b"junk") for i in range(1005)]
    records.append(next(_scenes(1)))
    summary = profile_images(records, tmp_path / "p", ocr=False).summary
    assert summary["counts"] == {"images": 1006, "ok": 1, "failed": 1005}
    assert len(summary["failures"]) == 1000 and summary["failures_not_listed"] == 5


def test_an_empty_set_or_a_missing_profile_is_named(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match=r"the image set is empty"):
        profile_images(iter([]), tmp_path / "p", ocr=False)
    assert list((tmp_path / "p").iterdir()) == []  # nothing half-written left
    with pytest.raises(InvalidInputError, match=r"holds no complete image profile: missing"):
        load_profile(tmp_path / "p")


def test_banded_index_finds_what_brute_force_finds() -> None:
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**63, size=400, dtype=np.uint64) * np.uint64(2)
    for i in range(0, 400, 10):  # plant copies 1..8 bits away
        flips = rng.choice(64, size=1 + i % 8, replace=False)
        hashes[i + 1] = hashes[i] ^ np.bitwise_or.reduce(np.uint64(1) << flips.astype(np.uint64))
    bits = popcount(hashes[:, None] ^ hashes[None, :])
    for distance in (0, 3, 6, 10):
        i, j = np.nonzero(np.triu(bits <= distance, k=1))
        expected = set(zip(i.tolist(), j.tolist(), strict=True))
        found = {tuple(p) for p in near_duplicate_pairs(hashes, distance).tolist()}
        assert found == expected
        assert distance < 6 or len(found) >= 30  # the planted pairs 1, 3 and 5 bits apart


def test_popcount_counts_bits(monkeypatch) -> None:
    values = np.array([[0, 1, 3], [2**63, 2**64 - 1, 0x0123456789ABCDEF]], dtype=np.uint64)
    assert popcount(values).tolist() == [[0, 1, 2], [1, 64, 32]]
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # as on numpy < 2
    assert popcount(values).tolist() == [[0, 1, 2], [1, 64, 32]]


def test_clusters_link_chains_and_collapse_copies() -> None:
    base = np.uint64(0x0123456789ABCDEF)
    one, two = base ^ np.uint64(1), base ^ np.uint64(3)  # 1 bit, then 1 more: a chain
    far = ~base
    hashes = np.array([base] * 1000 + [one, two, far, far ^ np.uint64(1 << 40), base ^ ~base])
    ids = cluster_ids(hashes, distance=1)
    assert len(set(ids[:1002].tolist())) == 1  # 1000 copies and the chain: one cluster
    assert ids[1002] == ids[1003] != ids[0]
    assert len(set(ids.tolist())) == 3


def test_memory_stays_flat_with_the_set_size(tmp_path) -> None:
    pool = list(_scenes(40, side=32))  # encoded once; the sets cycle through them

    def images(count: int) -> Iterator[ImageRecord]:
        for i in range(count):
            yield ImageRecord(f"set/{i:05d}.jpg", pool[i % len(pool)].data, label=f"c{i % 7}")

    profile_images(images(60), tmp_path / "warm", ocr=False)  # imports, caches

    def peak(count: int) -> int:
        tracemalloc.start()
        try:
            profile_images(images(count), tmp_path / str(count), ocr=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(200), peak(2000)
    assert large < 1.5 * small, (small, large)
    summary = load_profile(tmp_path / "2000").summary
    assert summary["counts"]["ok"] == 2000
    assert summary["near_duplicates"]["clusters"] == 40  # each pooled image's 50 copies


# --- the report ------------------------------------------------------------------------------


def test_the_report_shows_the_profile(tmp_path) -> None:
    records = [*_scenes(10), ImageRecord("dark.png", _bytes(Image.new("RGB", (40, 40), 5))),
               ImageRecord("bad.jpg", b"junk")]  # fmt: skip
    profile = profile_images(records, tmp_path / "p", faces=True, ocr=False)
    assert profile.summary["faces"]["measured"] is True
    by_key = {r.key: r for r in records}
    asked: list[list[str]] = []

    def thumbnails(keys: list[str]) -> Iterator[ImageRecord]:
        asked.append(keys)
        return (by_key[k] for k in keys)

    paths = write_report(profile, thumbnails, tmp_path / "report")
    assert set(paths) == {"features", "embeddings", "outliers", "report"}
    for name in ("features", "embeddings", "outliers"):
        with Image.open(paths[name]) as image:
            assert image.format == "PNG" and image.width > 100
    assert "dark.png" in asked[0]  # the darkest image is shown
    page = paths["report"].read_text()
    for name in ("features.png", "embeddings.png", "outliers.png"):
        assert f"src='{name}'" in page
    assert "bad.jpg" in page and "not an image" in page
    assert "brightness" in page and "Near-duplicates" in page

    without = write_report(load_profile(tmp_path / "p"), None, tmp_path / "plain")
    assert set(without) == {"features", "embeddings", "report"}
    assert "outliers.png" not in without["report"].read_text()
