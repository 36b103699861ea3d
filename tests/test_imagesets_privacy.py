"""Privacy repairs on real images: faces blurred until dlib finds none, personal data read by
Tesseract blacked out (skipped with the reason where Tesseract is not installed), metadata
stripped. The OCR tests need the `tesseract` binary (apt-get install tesseract-ocr)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.imagesets.privacy import (
    TESSERACT_MISSING,
    Word,
    blur_faces,
    dlib_faces,
    faces_report,
    find_pii,
    luhn_valid,
    redact_text_pii,
    strip_metadata,
    tesseract_words,
)
from synth_pipelines.core.imagesets.records import ImageRecord

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason=TESSERACT_MISSING)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(record: ImageRecord) -> Image.Image:
    return Image.open(io.BytesIO(record.data))


# --- faces ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_records() -> list[ImageRecord]:
    """Simulator faces dlib finds (it finds most), 256 px PNG."""
    simulator = ProceduralFaceSimulator(size=256)
    records = []
    for seed in range(1, 9):
        image = simulator.render("female/adult", seed).image
        if dlib_faces(image):
            records.append(ImageRecord(f"faces/{seed}.png", encode(image), label="adult"))
    assert len(records) >= 6
    return records


def scene(seed: int) -> ImageRecord:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((128, 128), Image.Resampling.BILINEAR)
    return ImageRecord(f"scenes/{seed}.png", encode(image))


def test_blurred_faces_are_no_longer_found(face_records) -> None:
    for record in face_records[:3]:
        blurred = blur_faces(record)
        assert blurred is not record and blurred.key == record.key
        assert blurred.metadata["faces_blurred"] >= 1
        assert blurred.label == "adult"
        assert dlib_faces(decode(blurred)) == []
        assert decode(blurred).format == "PNG"


def test_blur_stays_inside_the_padded_box(face_records) -> None:
    record = face_records[0]
    original = np.asarray(decode(record).convert("RGB"), np.int16)
    x, y, w, h = dlib_faces(decode(record))[0]
    blurred = np.asarray(decode(blur_faces(record, [(x, y, w, h)])).convert("RGB"), np.int16)
    changed = np.argwhere(np.abs(blurred - original).max(axis=2) > 0)
    pad_x, pad_y = round(w * 0.2), round(h * 0.2)
    assert changed[:, 1].min() >= x - pad_x and changed[:, 1].max() < x + w + pad_x
    assert changed[:, 0].min() >= y - pad_y and changed[:, 0].max() < y + h + pad_y
    # The face itself is changed a lot: the blur is strong.
    inside = np.abs(blurred - original)[y : y + h, x : x + w].mean()
    assert inside > 8


def test_a_palette_png_is_blurred_too(face_records) -> None:
    image = decode(face_records[1]).convert("P", palette=Image.Palette.ADAPTIVE)
    blurred = blur_faces(ImageRecord("palette.png", encode(image)))
    assert blurred.metadata["faces_blurred"] >= 1
    assert dlib_faces(decode(blurred)) == []


def test_an_image_without_faces_comes_back_unchanged() -> None:
    record = scene(1)
    assert blur_faces(record) is record


def test_faces_in_a_set_that_should_have_none_block_and_are_blurred(face_records) -> None:
    records = [scene(i) for i in range(3)] + face_records[:2]
    report, repaired = faces_report(records, expect_faces=False)
    assert report.passed is False and report.blocking is True
    assert report.failing == [r.key for r in face_records[:2]]
    assert report.reasons[face_records[0].key][0].startswith("1 face(s) at [[")
    assert [r.key for r in repaired] == report.failing
    assert all(dlib_faces(decode(r)) == [] for r in repaired)
    assert report.metrics["images"] == 5 and report.metrics["images_with_faces"] == 2
    assert report.messages[0].startswith("images_with_faces 2 of 5 > 0 allowed")


def test_a_face_set_needs_a_face_in_every_image(face_records) -> None:
    report, repaired = faces_report(face_records[:2], expect_faces=True)
    assert report.passed is True and repaired == []
    report, _ = faces_report([*face_records[:2], scene(7)], expect_faces=True)
    assert report.passed is False and report.blocking is False
    assert report.failing == ["scenes/7.png"]
    assert report.reasons["scenes/7.png"] == ["no face found (dlib HOG detector)"]


def test_bad_boxes_and_detectors_are_rejected(face_records) -> None:
    with pytest.raises(InvalidInputError, match="w, h > 0"):
        blur_faces(face_records[0], [(10, 10, 0, 5)])
    with pytest.raises(InvalidInputError, match="unknown face detector 'haar'"):
        blur_faces(face_records[0], detector="haar")
    with pytest.raises(InvalidInputError, match=r"'broken\.png' cannot be decoded"):
        blur_faces(ImageRecord("broken.png", b"nope"))


# --- text -------------------------------------------------------------------------------------

LINES = ("contact jane.doe@example.com", "4111 1111 1111 1111", "call (212) 555-0187")


def text_image() -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
    """Three lines in PIL's default font at 40 px, and where each PII string was drawn."""
    font = ImageFont.load_default(size=40)
    image = Image.new("RGB", (900, 300), "white")
    draw = ImageDraw.Draw(image)
    drawn = {}
    for i, line in enumerate(LINES):
        origin = (20, 20 + 90 * i)
        draw.text(origin, line, fill="black", font=font)
        pii = line.split(" ", 1)[1] if i != 1 else line
        offset = draw.textlength(line[: len(line) - len(pii)], font=font)
        left, top, right, bottom = draw.textbbox((origin[0] + offset, origin[1]), pii, font=font)
        drawn[pii] = (int(left), int(top), int(right), int(bottom))
    return image, drawn


def test_without_tesseract_the_record_comes_back_with_the_skip_finding(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no tesseract binary
    assert shutil.which("tesseract") is None
    image, _ = text_image()
    record = ImageRecord("card.png", encode(image))
    result, findings = redact_text_pii(record)
    assert result is record
    assert findings == [{"kind": "skipped", "message": TESSERACT_MISSING}]
    assert TESSERACT_MISSING == "skipped: tesseract not installed (apt-get install tesseract-ocr)"


@needs_tesseract
def test_emails_cards_and_phones_are_blacked_out_and_unreadable() -> None:
    image, drawn = text_image()
    record = ImageRecord("card.png", encode(image), metadata={"seed": 3})
    redacted, findings = redact_text_pii(record)

    assert sorted(f["kind"] for f in findings) == ["card_number", "email", "phone_number"]
    by_kind = {f["kind"]: f for f in findings}
    assert by_kind["email"]["text"] == "j***@example.com"
    assert by_kind["card_number"]["text"] == "***1111"
    assert by_kind["phone_number"]["text"] == "***0187"
    assert redacted.metadata == {"seed": 3, "pii_redacted": 3}

    pixels = np.asarray(decode(redacted).convert("L"))
    for text, (left, top, right, bottom) in drawn.items():
        covered = pixels[top:bottom, left:right]
        assert (covered == 0).mean() > 0.97, f"{text!r} is not blacked out"
    # "contact" and "call" are not personal data: they are still there, untouched.
    assert (pixels[20:70, 20:150] == 255).mean() > 0.5

    words = " ".join(w.text for w in tesseract_words(decode(redacted)))
    assert "@" not in words and "1111" not in words and "555" not in words
    assert find_pii(tesseract_words(decode(redacted))) == []
    assert redact_text_pii(redacted) == (redacted, [])


@needs_tesseract
def test_a_jpeg_is_redacted_as_a_jpeg() -> None:
    image, _ = text_image()
    record = ImageRecord("card.jpg", encode(image, "JPEG", quality=92))
    redacted, findings = redact_text_pii(record)
    assert len(findings) == 3
    assert decode(redacted).format == "JPEG"


def test_pii_is_found_across_ocr_words_of_a_line() -> None:
    # Tesseract reads "4111 1111" as one word "41111111": the number spans words.
    words = [
        Word("card:", (0, 0, 50, 20), (1, 1)),
        Word("41111111", (60, 0, 80, 20), (1, 1)),
        Word("1111", (150, 0, 40, 20), (1, 1)),
        Word("1111", (200, 0, 40, 20), (1, 1)),
        Word("order", (0, 40, 50, 20), (1, 2)),
        Word("1234567812345678", (60, 40, 160, 20), (1, 2)),  # 16 digits, fails Luhn
        Word("mail", (0, 80, 40, 20), (1, 3)),
        Word("a.b+c@mail.example.org", (50, 80, 200, 20), (1, 3)),
    ]
    findings = find_pii(words)
    assert [f["kind"] for f in findings] == ["card_number", "email"]
    assert findings[0]["boxes"] == [[60, 0, 80, 20], [150, 0, 40, 20], [200, 0, 40, 20]]
    assert findings[0]["box"] == [60, 0, 180, 20]
    assert findings[1]["boxes"] == [[50, 80, 200, 20]]


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")  # 15-digit Amex test number
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("41111111x1111111")


# --- metadata ---------------------------------------------------------------------------------


def test_exif_and_gps_are_stripped_from_a_jpeg() -> None:
    image = Image.radial_gradient("L").resize((64, 48)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x0110] = "Model X"
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    exif.get_ifd(0x8825)[1] = "N"
    data = encode(image, "JPEG", quality=95, exif=exif)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)

    clean = strip_metadata(ImageRecord("photo.jpg", data, metadata={"seed": 1}))
    reopened = decode(clean)
    assert reopened.format == "JPEG"
    assert len(reopened.getexif()) == 0 and "exif" not in reopened.info
    assert clean.metadata == {"seed": 1}
    difference = np.abs(
        np.asarray(reopened, np.int16) - np.asarray(decode(ImageRecord("o", data)), np.int16)
    )
    assert difference.mean() < 1.5  # re-saved at high quality


def test_exif_orientation_is_applied_before_it_is_dropped() -> None:
    image = Image.new("RGB", (60, 30), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    clean = strip_metadata(ImageRecord("rotated.jpg", encode(image, "JPEG", exif=exif)))
    assert decode(clean).size == (30, 60)


def test_png_text_chunks_are_stripped_and_pixels_kept() -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8))
    info = PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("parameters", "prompt: a photo of jane doe, seed 42")
    data = encode(image, "PNG", pnginfo=info)
    assert Image.open(io.BytesIO(data)).text["Author"] == "Jane Doe"

    reopened = decode(strip_metadata(ImageRecord("a.png", data)))
    assert reopened.format == "PNG"
    assert reopened.text == {} and "Author" not in reopened.info
    assert np.array_equal(np.asarray(reopened), np.asarray(image))
