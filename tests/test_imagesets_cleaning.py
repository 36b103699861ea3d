"""What validation hands to export: the synthetic set with the faces blurred where the real set
has none, and personal data in text blacked out (tesseract), counted in the privacy report."""

from __future__ import annotations

import shutil

import pytest

from synth_pipelines.core.imagesets.pipeline import clean_records
from synth_pipelines.core.imagesets.privacy import dlib_faces, tesseract_words
from synth_pipelines.core.imagesets.records import ImageRecord, read_records, write_records
from tests.test_imagesets_privacy import decode, encode, face_records, scene, text_image

_ = face_records  # the fixture


def _written(records, tmp_path, name):
    path = tmp_path / f"{name}.parquet"
    write_records(records, path)
    return path


def test_faces_are_blurred_only_where_the_real_set_has_none(face_records, tmp_path) -> None:
    records = [*face_records[:3], scene(1), scene(2)]
    path = _written(records, tmp_path, "synthetic")
    counts = clean_records(path, tmp_path / "clean.parquet", expect_faces=False, ocr=False)
    assert counts["faces_blurred_images"] == 3
    cleaned = {r.key: r for r in read_records(tmp_path / "clean.parquet")}
    for record in face_records[:3]:
        assert dlib_faces(decode(cleaned[record.key]).convert("RGB")) == []
        assert cleaned[record.key].metadata["faces_blurred"] >= 1
    assert cleaned["scenes/1.png"].data == scene(1).data  # untouched

    kept = clean_records(path, tmp_path / "kept.parquet", expect_faces=True, ocr=False)
    assert kept["faces_blurred_images"] == 0
    assert [r.data for r in read_records(tmp_path / "kept.parquet")] == [r.data for r in records]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_personal_text_is_redacted_when_ocr_is_on(tmp_path) -> None:
    image, _ = text_image()
    records = [ImageRecord("text.png", encode(image)), scene(3)]
    path = _written(records, tmp_path, "synthetic")
    counts = clean_records(path, tmp_path / "clean.parquet", expect_faces=None, ocr=None)
    assert counts["text_redacted_images"] == 1
    text = " ".join(w.text for w in tesseract_words(
        decode(next(read_records(tmp_path / "clean.parquet"))).convert("RGB")))  # fmt: skip
    assert "jane.doe@example.com" not in text and "4111" not in text
    off = clean_records(path, tmp_path / "off.parquet", expect_faces=None, ocr=False)
    assert off["text_redacted_images"] == 0 and "OCR is off" in off["text_redaction_skipped"]


def test_thresholds_are_settings() -> None:
    from synth_pipelines.core.errors import InvalidInputError
    from synth_pipelines.core.imagesets.pipeline import parse_thresholds

    t = parse_thresholds("max_ks=0.3, copy_requires_both=true, max_wasserstein.noise=0.5")
    assert (t.max_ks, t.copy_requires_both, t.max_wasserstein["noise"]) == (0.3, True, 0.5)
    assert t.max_wasserstein["brightness"] == parse_thresholds("").max_wasserstein["brightness"]
    for bad, words in [
        ("nope=1", "'nope' is not a threshold; accepted: copy_requires_both"),
        ("max_ks=abc", "'max_ks=abc'"),
        ("copy_requires_both=maybe", "true or false"),
        ("max_wasserstein.colour=1", "max_wasserstein.<width"),
    ]:
        with pytest.raises(InvalidInputError, match="SYNTH_IMAGES_THRESHOLDS") as info:
            parse_thresholds(bad)
        assert words in str(info.value)


def test_failing_samples_as_thumbnails(face_records, tmp_path) -> None:
    from synth_pipelines.core.imagesets.pipeline import thumbnails_markdown

    path = _written([*face_records[:2], ImageRecord("bad.png", b"not an image")], tmp_path, "s")
    md = thumbnails_markdown(path, ["bad.png", face_records[1].key, "missing.png"])
    lines = md.split("\n\n")
    assert lines[0] == "`bad.png` (does not decode)"
    assert lines[1].startswith(f"![{face_records[1].key}](data:image/png;base64,")
    assert len(lines) == 2
