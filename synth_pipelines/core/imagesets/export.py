"""Exports of an image set in the layouts ML teams load, to any object store (local or S3).

`export_set(records, store, prefix, fmt)` streams `ImageRecord`s into one of FORMATS under
`prefix`:

- `jsonl`: `images/<key>` and `data.jsonl`, one line per image: `file_name` (`images/<key>`,
  relative to data.jsonl), `label`, the metadata fields, `width`, `height`, `boxes`.
- `parquet`: `data-00000.parquet` … of at most `shard_size` rows, row groups of
  `row_group_size` rows. Columns `image` (struct {bytes, path}: the Hugging Face `Image`
  layout, declared in the schema metadata so `datasets` decodes it), `label`, `metadata`
  (JSON string), `width`, `height`. Read the `data-*.parquet` files (a whole-folder
  `pyarrow.parquet.read_table` would take manifest.json for Parquet too).
- `webdataset`: tar shards `shard-000000.tar` … of at most `shard_size` samples: `<sample>.<ext>`,
  `<sample>.json` (key, label, metadata, width, height, boxes) and `<sample>.cls`: the label's
  index in the manifest's `classes`, -1 for an image with no label (WebDataset decodes `.cls`
  with int()). Sample names are `<8-digit index>_<key, dots and slashes made dashes>`: no dots,
  since WebDataset splits a member name at its first dot. `datasets.load_dataset("webdataset")`
  needs every sample to hold the same members, so it reads a set of one image format only; the
  `webdataset` library reads any.
- `imagefolder`: `train/<label or "unlabeled">/<file>` and `train/metadata.jsonl` (`file_name`
  relative to it, `label`, the metadata fields, `width`, `height`, and `objects` {bbox,
  categories}, Hugging Face's detection layout). Everything sits under `train/` because
  `datasets` reads split names from folder and file names: a label or a key holding "test",
  "val" or "dev" would otherwise split the set, and images outside the split would be
  dropped. Keys are flattened into file names ("/" -> "__") for the same reason.
  `datasets.load_dataset("imagefolder", data_dir=<prefix>)` loads it with the labels and the
  metadata as columns; torchvision's ImageFolder reads `<prefix>/train`.
- `coco`: `images/<key>` and `annotations.json`: images (id, file_name relative to `images/`,
  width, height, label), annotations (one per face box: id, image_id, category_id, bbox
  [x, y, w, h], area, iscrowd) and one category, "face".

Every export ends with `manifest.json` (format, counts, labels, classes, and the sha256 and size
of every other file) and then an empty `_SUCCESS`: a reader trusts a prefix only once
`_SUCCESS` is there.

Nothing partial is published. The export is written under a staging prefix
`<prefix>.partial-<uuid>/` and published only once complete: on a `LocalObjectStore` the
staging directory is renamed to the prefix in one step; on any other store every staged key is
copied to its final key (server-side on S3), then `manifest.json`, then `_SUCCESS` last, and the
staged keys are deleted. If anything fails (the records iterator raising included), the staged
keys and any keys already copied are deleted, and the error is raised again. An existing export
at the prefix is an error unless `overwrite=True`; it is then removed only once the new one is
staged in full (locally the two directories are swapped by renames; elsewhere the old
`_SUCCESS` goes first, then the old keys, then the new keys are copied in).

With `strip_exif` (the default) EXIF, XMP, IPTC, comments and PNG text chunks are removed,
losslessly: JPEG and PNG keep their pixel data byte for byte, only the metadata segments or
chunks are dropped. An image whose EXIF orientation is not 1 is turned upright first (the only
re-encode: JPEG at quality 95 with the source's subsampling and ICC profile, PNG losslessly)
and its boxes turned with it; other formats carrying EXIF are re-saved by Pillow. An image with
no metadata is written exactly as stored.

Memory stays flat in the set's size: images are written as they come, at most one Parquet row
group of them is held, files listings and COCO annotations are spooled to temporary files. Only
the record keys are kept (to refuse duplicates), about 100 bytes per image.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps, UnidentifiedImageError

from synth_pipelines.core.errors import InvalidInputError, StorageError
from synth_pipelines.core.imagesets.records import Box, ImageRecord
from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore, validate_key
from synth_pipelines.core.storage.streams import HashingWriter

__all__ = [
    "FORMATS",
    "MANIFEST",
    "SUCCESS",
    "ExportResult",
    "export_set",
    "strip_image_metadata",
]

FORMATS = ("jsonl", "parquet", "webdataset", "imagefolder", "coco")
MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
FACE_CATEGORY = {"id": 1, "name": "face", "supercategory": "face"}
UNLABELED = "unlabeled"  # the imagefolder class folder of images with no label

_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_JPEG_QUALITY = 95  # JPEG and WebP re-encoded (to turn them upright, or to drop WebP's EXIF)
_ORIENTATION_TAG = 0x0112
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_SAFE_FOLDER = re.compile(r"[^A-Za-z0-9 _.-]+")
_COPY_BUFFER = 1024 * 1024

# JPEG markers whose segments hold metadata: APP1 (EXIF, XMP), APP13 (IPTC), COM (comments).
_JPEG_METADATA_MARKERS = frozenset({0xE1, 0xED, 0xFE})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn have no length
_JPEG_SOS, _JPEG_EOI, _JPEG_APP2 = 0xDA, 0xD9, 0xE2
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start of frame: the size
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_METADATA_CHUNKS = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"})
# The column Hugging Face imagefolder adds beside metadata.jsonl's: no metadata field may take it.
_IMAGEFOLDER_TAKEN = frozenset({"image"})


@dataclass(frozen=True)
class ExportResult:
    """What `export_set` published."""

    format: str
    prefix: str
    keys_written: int  # objects under `prefix`, manifest.json and _SUCCESS included
    images: int
    bytes: int  # total size of those objects
    manifest_key: str
    seconds: float


@dataclass(frozen=True)
class _Image:
    """A record ready to write: its bytes as exported and what was measured of them."""

    index: int
    record: ImageRecord
    data: bytes
    name: str  # the record key, with the image's extension when it had none
    width: int
    height: int
    boxes: tuple[Box, ...]

    @property
    def ext(self) -> str:
        return self.name.rsplit(".", 1)[1].lower()


def export_set(
    records: Iterable[ImageRecord],
    store: ObjectStore,
    prefix: str,
    fmt: str,
    *,
    strip_exif: bool = True,
    shard_size: int = 1000,
    row_group_size: int = 256,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Export `records` to `prefix` of `store` in format `fmt` (one of FORMATS), streaming.

    `strip_exif` removes EXIF/XMP/IPTC (see the module docstring); `shard_size` caps the rows of
    a Parquet file and the samples of a WebDataset shard; `row_group_size` is the rows of a
    Parquet row group; `overwrite` replaces an export already at `prefix` (otherwise an error);
    `progress(n)` is called with the count of images exported after each one. Bad arguments,
    undecodable images, duplicate keys, boxes outside their image and metadata that contradicts
    the export's own fields raise InvalidInputError; on any error nothing is published.
    """
    started = time.perf_counter()
    prefix = _check_arguments(prefix, fmt, shard_size, row_group_size)
    _check_target(store, prefix, overwrite)
    stage = _Stage(store, prefix)
    try:
        with contextlib.ExitStack() as stack:
            writer = _WRITERS[fmt](
                stage, stack, shard_size=shard_size, row_group_size=row_group_size
            )
            images = _prepared(records, strip_exif, progress)
            for image in images:
                writer.add(image)
                stage.count(image)
            writer.finish()
        stage.write_manifest(fmt, writer.manifest_fields())
        keys, size = stage.publish(overwrite)
    except BaseException as exc:
        stage.discard(exc)
        raise
    finally:
        stage.close()
    return ExportResult(
        format=fmt,
        prefix=prefix,
        keys_written=keys,
        images=stage.images,
        bytes=size,
        manifest_key=f"{prefix}/{MANIFEST}",
        seconds=time.perf_counter() - started,
    )


def _check_arguments(prefix: str, fmt: str, shard_size: int, row_group_size: int) -> str:
    if fmt not in FORMATS:
        raise InvalidInputError(f"export format {fmt!r} is not one of: {', '.join(FORMATS)}")
    for name, value in (("shard_size", shard_size), ("row_group_size", row_group_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, not {value!r}")
    if not isinstance(prefix, str) or not prefix.strip("/"):
        raise InvalidInputError("an export needs a prefix to write under, e.g. 'exports/cats'")
    prefix = prefix.strip("/")
    validate_key(prefix)
    if ".partial-" in prefix.rsplit("/", 1)[-1]:
        raise InvalidInputError(
            f"export prefix {prefix!r} contains '.partial-', which names exports in progress"
        )
    return prefix


def _check_target(store: ObjectStore, prefix: str, overwrite: bool) -> None:
    if overwrite:
        return
    existing = next(iter(store.list_keys(f"{prefix}/")), None)
    if existing is not None:
        raise InvalidInputError(
            f"{store.describe()} already holds {existing!r} under export prefix {prefix!r}; "
            "export to a new prefix, or pass overwrite=True to replace it"
        )


# --- images -------------------------------------------------------------------------------


def _prepared(
    records: Iterable[ImageRecord],
    strip_exif: bool,
    progress: Callable[[int], None] | None,
) -> Iterator[_Image]:
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, ImageRecord):
            raise InvalidInputError(
                f"export item {index} is a {type(record).__name__}, not an ImageRecord"
            )
        if record.key in seen:
            raise InvalidInputError(
                f"image key {record.key!r} appears twice in the set; keys must be unique"
            )
        seen.add(record.key)
        yield _prepare(index, record, strip_exif)
        if progress is not None:
            progress(index + 1)


def _prepare(index: int, record: ImageRecord, strip_exif: bool) -> _Image:
    validate_key(record.key)
    orientation = 1
    probed = _probe(record.data, strip=strip_exif)
    if probed is not None:  # the fast path: an upright JPEG or a PNG with nothing to strip
        fmt, stored_size, data = probed
        size = stored_size
    else:
        fmt, data, stored_size, size, orientation = _open(record, strip_exif)
    ext = _EXTENSIONS.get(fmt, fmt.lower() or "bin")
    name = record.key if "." in record.key.rsplit("/", 1)[-1] else f"{record.key}.{ext}"
    boxes = tuple(
        _turn_box(_check_box(record, box), orientation, *stored_size) for box in record.boxes
    )
    for box in boxes:
        _check_inside(record, box, size)
    return _Image(index, record, data, name, size[0], size[1], boxes)


def _open(
    record: ImageRecord, strip_exif: bool
) -> tuple[str, bytes, tuple[int, int], tuple[int, int], int]:
    """Pillow's reading of an image that has metadata (or an unusual format): (format, bytes to
    export, stored size, exported size, EXIF orientation applied)."""
    try:
        with Image.open(io.BytesIO(record.data)) as image:
            fmt = image.format or ""
            stored_size = size = image.size
            orientation = _orientation(image) if strip_exif else 1
            if orientation != 1:
                data, size = _upright(image, orientation)
            elif strip_exif:
                data = strip_image_metadata(record.data, image)
            else:
                data = record.data
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InvalidInputError(f"image {record.key!r} cannot be decoded: {exc}") from exc
    except InvalidInputError as exc:
        raise InvalidInputError(f"image {record.key!r} cannot be exported: {exc}") from exc
    return fmt, data, stored_size, size, orientation


def _probe(data: bytes, strip: bool) -> tuple[str, tuple[int, int], bytes] | None:
    """(format, (width, height), bytes to export) of a JPEG or PNG read without Pillow, when
    that is safe: a JPEG whose EXIF (if any) leaves it upright, a PNG with no metadata (or any,
    when not `strip`). None for anything else, for anything odd, and for a rotated JPEG."""
    try:
        if data[:2] == b"\xff\xd8":
            size, has_metadata = None, False
            for marker, start, end in _jpeg_segments(data, header_only=True):
                if marker in _JPEG_METADATA_MARKERS:
                    has_metadata = True
                    if strip and marker == 0xE1 and _jpeg_orientation(data, start, end) != 1:
                        return None
                if marker in _JPEG_SOF and size is None:
                    height = int.from_bytes(data[start + 5 : start + 7], "big")
                    size = (int.from_bytes(data[start + 7 : start + 9], "big"), height)
            if not size or not size[0] or not size[1]:
                return None
            return "JPEG", size, _strip_jpeg(data) if strip and has_metadata else data
        if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
            if strip and any(kind in _PNG_METADATA_CHUNKS for kind in _png_chunks(data)):
                return None
            size = (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))
            return ("PNG", size, data) if size[0] and size[1] else None
    except InvalidInputError:  # malformed: Pillow says what is wrong
        return None
    return None


def _jpeg_orientation(data: bytes, start: int, end: int) -> int | None:
    """The EXIF orientation in the APP1 segment data[start:end]: 1 when the segment is XMP or
    the EXIF has no orientation tag, None when the EXIF cannot be read here (Pillow decides)."""
    if data[start + 4 : start + 10] != b"Exif\x00\x00":
        return 1
    tiff = start + 10
    order = data[tiff : tiff + 2]
    if order not in (b"II", b"MM"):
        return None
    endian = "little" if order == b"II" else "big"

    def number(offset: int, size: int) -> int:
        return int.from_bytes(data[tiff + offset : tiff + offset + size], endian)

    ifd = number(4, 4)
    if tiff + ifd + 2 > end:
        return None
    for entry in range(number(ifd, 2)):
        at = ifd + 2 + 12 * entry
        if tiff + at + 12 > end:
            return None
        if number(at, 2) == _ORIENTATION_TAG:
            return number(at + 8, 2) if number(at + 2, 2) == 3 else None
    return 1


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is dropped like any other, not trusted
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(image: Image.Image, orientation: int) -> tuple[bytes, tuple[int, int]]:
    """The image turned as its EXIF orientation says, re-saved in its format with no EXIF."""
    fmt = "JPEG" if image.format == "MPO" else image.format
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        from PIL import JpegImagePlugin

        sampling = JpegImagePlugin.get_sampling(image)
        options = {"quality": _JPEG_QUALITY, "subsampling": sampling if sampling >= 0 else 0}
    elif fmt == "WEBP":
        options = {"quality": _JPEG_QUALITY}
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]
    turned = ImageOps.exif_transpose(image)
    turned.info.pop("exif", None)
    turned.info.pop("xmp", None)
    buffer = io.BytesIO()
    turned.save(buffer, format=fmt, **options)
    return buffer.getvalue(), turned.size


def strip_image_metadata(data: bytes, image: Image.Image | None = None) -> bytes:
    """`data` without EXIF, XMP, IPTC, comments or PNG text chunks; `data` itself when it has
    none. JPEG and PNG are edited losslessly (segments and chunks dropped, pixel data kept
    byte for byte); other formats carrying EXIF are re-saved by Pillow. `image`, the already
    opened `data`, spares a second parse. Orientation is not applied here (see export_set)."""
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data)
    if data[:8] == _PNG_SIGNATURE:
        return _strip_png(data)
    with contextlib.ExitStack() as stack:
        if image is None:
            image = stack.enter_context(Image.open(io.BytesIO(data)))
        if not image.getexif() and "xmp" not in image.info and "exif" not in image.info:
            return data
        image.load()
        clean = image.copy()
        clean.info = {k: v for k, v in image.info.items() if k not in ("exif", "xmp")}
        buffer = io.BytesIO()
        options = {"quality": _JPEG_QUALITY} if image.format == "WEBP" else {}
        clean.save(buffer, format=image.format, **options)
        return buffer.getvalue()


def _jpeg_segments(data: bytes, header_only: bool = False) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment of a JPEG, entropy-coded data included in the
    segment of the scan before it; the last one ends at the EOI marker's end. `header_only`
    stops at the first scan, unread."""
    pos, size = 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            raise InvalidInputError(f"JPEG data is malformed at byte {pos}: expected a marker")
        marker = data[pos + 1] if pos + 1 < size else _JPEG_EOI
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _JPEG_EOI:
            yield marker, pos, pos + 2
            return
        if marker in _JPEG_STANDALONE:
            yield marker, pos, pos + 2
            pos += 2
            continue
        if marker == _JPEG_SOS and header_only:
            return
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == _JPEG_SOS:  # scan data runs to the next marker that is not FF00 or RSTn
            end = _scan_end(data, end)
        yield marker, pos, end
        pos = end


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data from `pos` ends: at the next marker that is not a stuffed
    FF00, a restart marker RSTn or a fill byte."""
    found = _JPEG_NEXT_MARKER.search(data, pos)
    return found.start() if found else len(data)


def _is_mpf(data: bytes, start: int) -> bool:
    return data[start + 4 : start + 8] == b"MPF\x00"


def _strip_jpeg(data: bytes) -> bytes:
    """Drop APP1/APP13/COM segments. Only the header (before the first scan) is read unless it
    holds metadata; then the whole file is walked, and data after the end of the image (a
    phone's second image, with its own EXIF) is dropped with the MPF segment pointing at it."""
    header = (marker for marker, _start, _end in _jpeg_segments(data, header_only=True))
    if not any(marker in _JPEG_METADATA_MARKERS for marker in header):
        return data
    kept = [data[:2]]
    for marker, start, end in _jpeg_segments(data):
        if marker in _JPEG_METADATA_MARKERS or (marker == _JPEG_APP2 and _is_mpf(data, start)):
            continue
        kept.append(data[start:end])
    return b"".join(kept)


def _png_chunks(data: bytes) -> Iterator[bytes]:
    """The chunk types of a PNG, in order, up to IEND."""
    for kind, _start, _end in _png_chunk_spans(data):
        yield kind


def _png_chunk_spans(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    pos = 8
    while pos + 8 <= len(data):
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + int.from_bytes(data[pos : pos + 4], "big")
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def _strip_png(data: bytes) -> bytes:
    """Drop eXIf, tEXt, zTXt, iTXt and tIME chunks; every other chunk is kept as is."""
    spans = list(_png_chunk_spans(data))
    if not any(kind in _PNG_METADATA_CHUNKS for kind, _start, _end in spans):
        return data
    kept = [data[start:end] for kind, start, end in spans if kind not in _PNG_METADATA_CHUNKS]
    return data[:8] + b"".join(kept)


def _check_box(record: ImageRecord, box: Any) -> Box:
    try:
        x, y, w, h = (int(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"image {record.key!r} has box {box!r}; a box is [x, y, width, height] in pixels"
        ) from exc
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"image {record.key!r} has box {box!r} with no area")
    return x, y, w, h


def _turn_box(box: Box, orientation: int, width: int, height: int) -> Box:
    """`box` on the stored image, moved to where it lies once the image is turned upright."""
    if orientation == 1:
        return box
    x, y, w, h = box
    corners = [(x, y), (x + w, y + h)]
    moves = {
        2: lambda px, py: (width - px, py),
        3: lambda px, py: (width - px, height - py),
        4: lambda px, py: (px, height - py),
        5: lambda px, py: (py, px),
        6: lambda px, py: (height - py, px),
        7: lambda px, py: (height - py, width - px),
        8: lambda px, py: (py, width - px),
    }
    (ax, ay), (bx, by) = (moves[orientation](px, py) for px, py in corners)
    return min(ax, bx), min(ay, by), abs(bx - ax), abs(by - ay)


def _check_inside(record: ImageRecord, box: Box, size: tuple[int, int]) -> None:
    x, y, w, h = box
    if x < 0 or y < 0 or x + w > size[0] or y + h > size[1]:
        raise InvalidInputError(
            f"image {record.key!r} has box {list(box)} outside its {size[0]}x{size[1]} pixels"
        )


def _columns(image: _Image, taken: frozenset[str] = frozenset(), **fields: Any) -> dict[str, Any]:
    """The export's `fields`, then the record's metadata. A metadata key that names one of the
    export's fields must hold the same value; one in `taken` (a column the reader adds) is an
    error."""
    row = dict(fields)
    for name, value in image.record.metadata.items():
        if (name in row and row[name] != value) or name in taken:
            raise InvalidInputError(
                f"image {image.record.key!r} has metadata field {name!r} = {value!r}, which "
                f"clashes with the export's own {name!r} column; rename it in the metadata"
            )
        row.setdefault(name, value)
    return row


# --- staging and publishing ---------------------------------------------------------------


class _Stage:
    """The staging prefix an export is written under, its files listing, and its publication."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self.root = f"{prefix}.partial-{uuid.uuid4().hex}"
        self.images = 0
        self.bytes = 0
        self.files = 0
        self.labels: Counter[str] = Counter()
        self.unlabeled = 0
        self.boxes = 0
        self._listing = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._published: list[str] = []
        self._created = datetime.now(UTC).replace(microsecond=0)

    def close(self) -> None:
        self._listing.close()

    def _add_file(self, name: str, digest: str, size: int) -> None:
        if self.files:
            self._listing.write(",\n")
        self._listing.write(
            f"  {json.dumps(name)}: {json.dumps({'sha256': digest, 'bytes': size})}"
        )
        self.files += 1
        self.bytes += size

    def put(self, name: str, data: bytes, content_type: str | None = None) -> None:
        self.store.put_bytes(f"{self.root}/{name}", data, content_type)
        self._add_file(name, hashlib.sha256(data).hexdigest(), len(data))

    @contextlib.contextmanager
    def writer(self, name: str, content_type: str | None = None) -> Iterator[HashingWriter]:
        with self.store.open_writer(f"{self.root}/{name}", content_type) as raw:
            sink = HashingWriter(raw)
            yield sink
        self._add_file(name, sink.hash.hexdigest(), sink.written)

    def count(self, image: _Image) -> None:
        self.images += 1
        self.boxes += len(image.boxes)
        if image.record.label is None:
            self.unlabeled += 1
        else:
            self.labels[image.record.label] += 1

    def write_manifest(self, fmt: str, extra: Mapping[str, Any]) -> None:
        """manifest.json, the files listing streamed in from its spool, then _SUCCESS."""
        header = {
            "format": fmt,
            "created_at": self._created.isoformat(),
            "counts": {"images": self.images, "boxes": self.boxes, "unlabeled": self.unlabeled},
            "labels": dict(sorted(self.labels.items())),
            **extra,
        }
        with self.store.open_writer(f"{self.root}/{MANIFEST}", "application/json") as out:
            out.write(json.dumps(header, indent=1)[:-2].encode())
            out.write(b',\n "files": {\n')
            self._listing.seek(0)
            while chunk := self._listing.read(_COPY_BUFFER):
                out.write(chunk.encode())
            out.write(b"\n }\n}\n")
        self.store.put_bytes(f"{self.root}/{SUCCESS}", b"", "text/plain")

    def _final(self, key: str) -> str:
        return f"{self.prefix}/{key[len(self.root) + 1 :]}"

    def publish(self, overwrite: bool) -> tuple[int, int]:
        """Move the staged export to its prefix; (keys, bytes) published."""
        keys = self.files + 2
        size = self.bytes + self.store.size(f"{self.root}/{MANIFEST}")
        if isinstance(self.store, LocalObjectStore):
            self._rename(overwrite)
            return keys, size
        if overwrite:
            self.store.delete(f"{self.prefix}/{SUCCESS}")
            self.store.delete_many(list(self.store.list_keys(f"{self.prefix}/")))
        last = (f"{self.root}/{MANIFEST}", f"{self.root}/{SUCCESS}")
        for key in self.store.list_keys(f"{self.root}/"):
            if key not in last:
                self._copy(key)
        for key in last:
            self._copy(key)
        self._delete_staged()
        return keys, size

    def _rename(self, overwrite: bool) -> None:
        assert isinstance(self.store, LocalObjectStore)
        root = self.store.root
        staged, final = root.joinpath(*self.root.split("/")), root.joinpath(*self.prefix.split("/"))
        old = final.with_name(f"{final.name}.partial-{uuid.uuid4().hex}-replaced")
        try:
            if overwrite and final.exists():
                final.rename(old)
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(final)
        except OSError as exc:
            if old.exists() and not final.exists():
                old.rename(final)
            raise StorageError(
                f"cannot publish the export at {self.prefix!r} in {self.store.describe()}: {exc}"
            ) from exc
        shutil.rmtree(old, ignore_errors=True)

    def _copy(self, key: str) -> None:
        target = self._final(key)
        self._published.append(target)
        s3 = _s3_copier(self.store)
        if s3 is not None:
            s3(key, target)
            return
        with self.store.open_reader(key) as src, self.store.open_writer(target) as dst:
            shutil.copyfileobj(src, dst, _COPY_BUFFER)

    def _delete_staged(self) -> None:
        if isinstance(self.store, LocalObjectStore):
            shutil.rmtree(self.store.root.joinpath(*self.root.split("/")), ignore_errors=True)
            return
        self.store.delete_many(list(self.store.list_keys(f"{self.root}/")))

    def discard(self, error: BaseException) -> None:
        """After `error`: delete what was staged and what was already copied to the prefix,
        _SUCCESS first. A failure here is added to `error` as a note, not raised over it."""
        try:
            if self._published:
                self.store.delete(f"{self.prefix}/{SUCCESS}")
                self.store.delete_many(self._published)
            self._delete_staged()
        except Exception as exc:  # the original error matters more
            error.add_note(f"cleaning up the failed export at {self.prefix!r} also failed: {exc}")


def _s3_copier(store: ObjectStore) -> Callable[[str, str], None] | None:
    """A server-side copy between two keys of `store` when it is an S3ObjectStore, else None.
    (The S3 module is only looked up, never imported here: boto3 is slow to import.)"""
    import sys

    module = sys.modules.get("synth_pipelines.core.storage.s3_object_store")
    if module is None or not isinstance(store, module.S3ObjectStore):
        return None

    def full(key: str) -> str:
        validate_key(key)
        return f"{store.prefix}/{key}" if store.prefix else key

    def copy(source: str, target: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            store.client.copy(
                {"Bucket": store.bucket, "Key": full(source)}, store.bucket, full(target)
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"cannot copy {source!r} to {target!r} in {store.describe()}: {exc}"
            ) from exc

    return copy


# --- the formats --------------------------------------------------------------------------


class _Writer:
    """One format: `add` each image as it comes, `finish` once the records are exhausted."""

    def __init__(
        self, stage: _Stage, stack: contextlib.ExitStack, *, shard_size: int, row_group_size: int
    ) -> None:
        self.stage = stage
        self.stack = stack
        self.shard_size = shard_size
        self.row_group_size = row_group_size
        self.shard: contextlib.ExitStack | None = None  # the open shard of a sharded format
        stack.push(self._abandon_shard)

    def _abandon_shard(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        """On an error, the open shard's store writer is left with it, so nothing is stored."""
        if self.shard is not None:
            shard, self.shard = self.shard, None
            shard.__exit__(exc_type, exc, tb)
        return False

    def add(self, image: _Image) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Write what is still pending (the last shard, an index file)."""

    def manifest_fields(self) -> dict[str, Any]:
        return {}


def _jsonl_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode()


class _JsonlWriter(_Writer):
    """images/<key> and data.jsonl."""

    def __init__(self, stage: _Stage, stack: contextlib.ExitStack, **sizes: int) -> None:
        super().__init__(stage, stack, **sizes)
        self.index = stack.enter_context(stage.writer("data.jsonl", "application/jsonl"))

    def add(self, image: _Image) -> None:
        file_name = f"images/{image.name}"
        self.stage.put(file_name, image.data, _CONTENT_TYPES.get(image.ext))
        row = _columns(
            image, file_name=file_name, label=image.record.label, width=image.width,
            height=image.height, boxes=[list(b) for b in image.boxes],
        )  # fmt: skip
        self.index.write(_jsonl_line(row))

    def manifest_fields(self) -> dict[str, Any]:
        return {"index": "data.jsonl"}


def _folder_name(label: str | None) -> str:
    """A label as one safe folder name (the label itself stays exact in metadata.jsonl)."""
    if label is None:
        return UNLABELED
    name = _SAFE_FOLDER.sub("_", label).strip(" .") or "_"
    return name[:100]


class _ImagefolderWriter(_Writer):
    """train/<label>/<key, '/' as '__'> and train/metadata.jsonl (Hugging Face imagefolder)."""

    def __init__(self, stage: _Stage, stack: contextlib.ExitStack, **sizes: int) -> None:
        super().__init__(stage, stack, **sizes)
        self.index = stack.enter_context(stage.writer("train/metadata.jsonl", "application/jsonl"))
        self.names: set[str] = set()

    def add(self, image: _Image) -> None:
        file_name = f"{_folder_name(image.record.label)}/{image.name.replace('/', '__')}"
        if file_name in self.names:
            raise InvalidInputError(
                f"image {image.record.key!r} would be written as {file_name!r}, like an earlier "
                "image: flattening the keys' folders made two of them the same"
            )
        self.names.add(file_name)
        self.stage.put(f"train/{file_name}", image.data, _CONTENT_TYPES.get(image.ext))
        objects = {"bbox": [list(b) for b in image.boxes], "categories": [0] * len(image.boxes)}
        row = _columns(
            image, _IMAGEFOLDER_TAKEN, file_name=file_name, label=image.record.label,
            width=image.width, height=image.height, objects=objects,
        )  # fmt: skip
        self.index.write(_jsonl_line(row))

    def manifest_fields(self) -> dict[str, Any]:
        return {"index": "train/metadata.jsonl", "object_categories": ["face"]}


_HF_FEATURES = {
    "image": {"_type": "Image"},
    "label": {"dtype": "string", "_type": "Value"},
    "metadata": {"dtype": "string", "_type": "Value"},
    "width": {"dtype": "int32", "_type": "Value"},
    "height": {"dtype": "int32", "_type": "Value"},
}
PARQUET_SCHEMA = pa.schema(
    [
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("label", pa.string()),
        ("metadata", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
    ],
    # How `datasets` learns that `image` is its Image feature (decoded to PIL on access).
    metadata={"huggingface": json.dumps({"info": {"features": _HF_FEATURES}})},
)


class _ParquetWriter(_Writer):
    """data-00000.parquet …: `shard_size` rows a file, `row_group_size` rows a row group."""

    def __init__(self, stage: _Stage, stack: contextlib.ExitStack, **sizes: int) -> None:
        super().__init__(stage, stack, **sizes)
        self.pending: list[_Image] = []
        self.shards = 0
        self.rows_in_shard = 0
        self.writer: pq.ParquetWriter | None = None

    def _open_shard(self) -> None:
        self.shard = contextlib.ExitStack()
        name = f"data-{self.shards:05d}.parquet"
        sink = self.shard.enter_context(self.stage.writer(name, "application/vnd.apache.parquet"))
        self.writer = pq.ParquetWriter(
            sink,
            PARQUET_SCHEMA,
            compression="none",  # JPEG and PNG bytes do not compress
            use_dictionary=["label"],  # image bytes are unique: a dictionary only costs time
            write_statistics=["label", "width", "height"],
        )
        self.shards += 1
        self.rows_in_shard = 0

    def _close_shard(self) -> None:
        assert self.writer is not None and self.shard is not None
        self.writer.close()
        self.shard.close()  # publishes the file to the stage
        self.writer = self.shard = None
        self.rows_in_shard = 0

    def add(self, image: _Image) -> None:
        self.pending.append(image)
        full = self.rows_in_shard + len(self.pending) >= self.shard_size
        if len(self.pending) >= self.row_group_size or full:
            self._flush()
            if full:
                self._close_shard()

    def _flush(self) -> None:
        if not self.pending:
            return
        if self.writer is None:
            self._open_shard()
        assert self.writer is not None
        rows = self.pending
        metadata = [
            json.dumps(dict(i.record.metadata), sort_keys=True, ensure_ascii=False) for i in rows
        ]
        batch = pa.record_batch(
            [
                pa.StructArray.from_arrays(
                    [
                        pa.array([i.data for i in rows], pa.binary()),
                        pa.array([i.name for i in rows], pa.string()),
                    ],
                    names=["bytes", "path"],
                ),
                pa.array([i.record.label for i in rows], pa.string()),
                pa.array(metadata, pa.string()),
                pa.array([i.width for i in rows], pa.int32()),
                pa.array([i.height for i in rows], pa.int32()),
            ],
            schema=PARQUET_SCHEMA,
        )
        self.writer.write_batch(batch, row_group_size=len(rows))
        self.rows_in_shard += len(rows)
        self.pending = []

    def finish(self) -> None:
        self._flush()
        if self.writer is not None:
            self._close_shard()
        if self.shards == 0:  # an empty set is still a readable, empty dataset
            self._open_shard()
            self._close_shard()

    def manifest_fields(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "shard_size": self.shard_size,
            "row_group_size": self.row_group_size,
        }


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def sample_key(index: int, key: str) -> str:
    """The WebDataset sample name of the `index`-th image: unique, and free of dots."""
    stem = key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key
    return f"{index:08d}_{_SAFE_NAME.sub('-', stem)[:100]}"


class _WebdatasetWriter(_Writer):
    """shard-000000.tar …: <sample>.<ext>, <sample>.json and <sample>.cls (class index or -1)."""

    def __init__(self, stage: _Stage, stack: contextlib.ExitStack, **sizes: int) -> None:
        super().__init__(stage, stack, **sizes)
        self.classes: dict[str, int] = {}
        self.shards = 0
        self.in_shard = 0
        self.tar: tarfile.TarFile | None = None
        self.mtime = int(time.time())

    def _open_shard(self) -> tarfile.TarFile:
        self.shard = contextlib.ExitStack()
        name = f"shard-{self.shards:06d}.tar"
        sink = self.shard.enter_context(self.stage.writer(name, "application/x-tar"))
        # mode "w" writes straight through; USTAR keeps every reader happy.
        self.tar = tarfile.open(fileobj=sink, mode="w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self.shards += 1
        self.in_shard = 0
        return self.tar

    def _close_shard(self) -> None:
        assert self.tar is not None and self.shard is not None
        self.tar.close()
        self.shard.close()
        self.tar = self.shard = None

    def add(self, image: _Image) -> None:
        tar = self.tar or self._open_shard()
        name = sample_key(image.index, image.record.key)
        label = image.record.label
        sample = {
            "key": image.record.key, "label": label, "metadata": dict(image.record.metadata),
            "width": image.width, "height": image.height, "boxes": [list(b) for b in image.boxes],
        }  # fmt: skip
        _tar_add(tar, f"{name}.{image.ext}", image.data, self.mtime)
        _tar_add(tar, f"{name}.json", json.dumps(sample, ensure_ascii=False).encode(), self.mtime)
        # Every sample gets a .cls (-1: no label): Hugging Face's loader wants the same members.
        cls = -1 if label is None else self.classes.setdefault(label, len(self.classes))
        _tar_add(tar, f"{name}.cls", str(cls).encode(), self.mtime)
        self.in_shard += 1
        if self.in_shard >= self.shard_size:
            self._close_shard()

    def finish(self) -> None:
        if self.tar is not None:
            self._close_shard()
        if self.shards == 0:
            self._open_shard()
            self._close_shard()

    def manifest_fields(self) -> dict[str, Any]:
        return {"shards": self.shards, "shard_size": self.shard_size, "classes": list(self.classes)}


class _CocoWriter(_Writer):
    """images/<key> and annotations.json, streamed: the images array is written as the images
    come, the annotations are spooled to a temporary file and appended after it."""

    def __init__(self, stage: _Stage, stack: contextlib.ExitStack, **sizes: int) -> None:
        super().__init__(stage, stack, **sizes)
        self.out = stack.enter_context(stage.writer("annotations.json", "application/json"))
        spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.annotations = stack.enter_context(spool)
        self.images = 0
        self.boxes = 0
        head = {
            "info": {
                "description": "synthetic image set exported by synth_pipelines",
                "date_created": datetime.now(UTC).replace(microsecond=0).isoformat(),
            },
            "licenses": [],
            "categories": [FACE_CATEGORY],
        }
        self.out.write(json.dumps(head)[:-1].encode() + b', "images": [\n')

    def add(self, image: _Image) -> None:
        self.stage.put(f"images/{image.name}", image.data, _CONTENT_TYPES.get(image.ext))
        image_id = image.index + 1
        entry = {
            "id": image_id, "file_name": image.name, "width": image.width,
            "height": image.height, "label": image.record.label,
        }  # fmt: skip
        self.out.write((",\n" if self.images else "").encode() + json.dumps(entry).encode())
        self.images += 1
        for x, y, w, h in image.boxes:
            self.boxes += 1
            annotation = {
                "id": self.boxes, "image_id": image_id, "category_id": FACE_CATEGORY["id"],
                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
            }  # fmt: skip
            self.annotations.write(("," if self.boxes > 1 else "") + json.dumps(annotation) + "\n")

    def finish(self) -> None:
        self.out.write(b'\n], "annotations": [\n')
        self.annotations.seek(0)
        while chunk := self.annotations.read(_COPY_BUFFER):
            self.out.write(chunk.encode())
        self.out.write(b"]}\n")

    def manifest_fields(self) -> dict[str, Any]:
        return {"index": "annotations.json", "categories": [FACE_CATEGORY]}


_WRITERS: dict[str, type[_Writer]] = {
    "jsonl": _JsonlWriter,
    "parquet": _ParquetWriter,
    "webdataset": _WebdatasetWriter,
    "imagefolder": _ImagefolderWriter,
    "coco": _CocoWriter,
}
