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
