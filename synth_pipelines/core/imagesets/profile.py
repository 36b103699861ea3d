"""The profile of an image set: every image measured (`features.measure`), streamed to disk, and
summarised into one JSON document.

`profile_images(records, out_dir)` reads the records once, in order, and writes into `out_dir`:
- `features.parquet`: one row per record (`FEATURE_SCHEMA`: key, label, ok, error, then the
  measurements; `embedding_row` is the image's row in `embeddings.npy`, null when it failed),
  written a row group at a time;
- `embeddings.npy`: float32 (ok images x `features.EMBEDDING_DIM`), the ok images in the order
  of their rows; `embedding_keys.jsonl` names the key of each row (one JSON string a line);
- `profile.json`: counts (images, ok, failed), failures ({key, reason}, the first
  `FAILURE_LIMIT`, and how many more), per numeric feature min/max/mean/std, quantiles and a
  20-bin histogram, counts of modes/formats/labels, the size and aspect mix, faces/text/GPS
  counts, near-duplicate clusters of the perceptual hashes and whether OCR ran.

Memory stays flat in the set's size: the images are measured a bounded window at a time, the
rows go out in row groups and the embeddings straight to disk (the .npy header is rewritten in
place with the final row count); the summary is computed from the finished Parquet one column at
a time. A corrupt, truncated or refused image (a decompression
bomb) is a failed row with its reason, and profiling goes on. Files appear complete: each is
written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synth_pipelines.core.errors import InvalidInputError, SynthError
from synth_pipelines.core.imagesets import features
from synth_pipelines.core.imagesets.features import EMBEDDING_DIM, NUMERIC_FEATURES
from synth_pipelines.core.imagesets.records import ImageRecord

FEATURES_FILE = "features.parquet"
EMBEDDINGS_FILE = "embeddings.npy"
EMBEDDING_KEYS_FILE = "embedding_keys.jsonl"
PROFILE_FILE = "profile.json"
FAILURE_LIMIT = 1000
ROW_GROUP_ROWS = 1024  # rows per Parquet row group (kept as Arrow batches until written)
BATCH_ROWS = 32  # rows kept as Python dicts before they become an Arrow batch
HISTOGRAM_BINS = 20
QUANTILES = {
    "p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99
}  # fmt: skip
TOP_SIZES = 10
CLUSTER_LIMIT = 1000  # clusters listed in profile.json (the largest first)
CLUSTER_KEYS = 50  # keys listed per cluster
ASPECT_BUCKETS = (  # (name, upper bound of width / height)
    ("tall (< 0.75)", 0.75),
    ("portrait (0.75-0.95)", 0.95),
    ("square (0.95-1.05)", 1.05),
    ("landscape (1.05-1.6)", 1.6),
    ("wide (1.6-2.2)", 2.2),
    ("panorama (>= 2.2)", float("inf")),
)

FEATURE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("label", pa.string()),
        ("ok", pa.bool_()),
        ("error", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("aspect", pa.float64()),
        ("mode", pa.string()),
        ("channels", pa.int64()),
        ("format", pa.string()),
        ("bytes", pa.int64()),
        ("jpeg_quality", pa.int64()),
        ("brightness", pa.float64()),
        ("contrast", pa.float64()),
        ("colourfulness", pa.float64()),
        ("sharpness", pa.float64()),
        ("noise", pa.float64()),
        ("dominant_colours", pa.string()),
        ("phash", pa.string()),
        ("exif", pa.string()),
        ("has_gps", pa.bool_()),
        ("faces", pa.int64()),
        ("face_boxes", pa.string()),
        ("text", pa.string()),
        ("text_skipped", pa.string()),
        ("embedding_row", pa.int64()),
    ]
)


@dataclass(frozen=True)
class ImageProfile:
    """A profiled set: where its files are and the profile JSON (`summary`)."""

    out_dir: Path
    features_path: Path
    embeddings_path: Path
    embedding_keys_path: Path
    profile_path: Path
    summary: dict[str, Any]

    @classmethod
    def at(cls, out_dir: Path, summary: dict[str, Any]) -> ImageProfile:
        out_dir = Path(out_dir)
        return cls(
            out_dir=out_dir,
            features_path=out_dir / FEATURES_FILE,
            embeddings_path=out_dir / EMBEDDINGS_FILE,
            embedding_keys_path=out_dir / EMBEDDING_KEYS_FILE,
            profile_path=out_dir / PROFILE_FILE,
            summary=summary,
        )

    def embeddings(self) -> np.ndarray:
        """The embeddings, memory-mapped (read-only)."""
        return np.load(self.embeddings_path, mmap_mode="r")

    def embedding_keys(self) -> Iterator[str]:
        with self.embedding_keys_path.open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)


def load_profile(out_dir: Path) -> ImageProfile:
    """The profile written by `profile_images` into `out_dir`. Raises InvalidInputError when a
    file of it is missing."""
    profile = ImageProfile.at(out_dir, {})
    paths = (
        profile.features_path,
        profile.embeddings_path,
        profile.embedding_keys_path,
        profile.profile_path,
    )
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InvalidInputError(f"{out_dir} holds no complete image profile: missing {missing}")
    summary = json.loads(profile.profile_path.read_text(encoding="utf-8"))
    return ImageProfile.at(out_dir, summary)


# --- measuring: a bounded window of images in flight ---------------------------------------


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _measured(
    records: Iterable[ImageRecord], faces: bool, ocr: bool | None, workers: int, max_pixels: int
) -> Iterator[tuple[ImageRecord, dict[str, Any] | None, np.ndarray | None, str | None]]:
    """(record, row, embedding, error) for each record, in order; `workers` threads decode and
    measure (PIL and numpy release the GIL), at most 2 x workers images in flight."""

    def work(record: ImageRecord):
        try:
            row, vector = features.analyse(record, faces=faces, ocr=ocr, max_pixels=max_pixels)
            return record, row, vector, None
        except InvalidInputError as error:  # corrupt, truncated, refused: the reason says which
            return record, None, None, str(error)
        except SynthError:  # a missing backend is the run's problem, not the image's
            raise
        except Exception as error:  # an image no measurement copes with must not end the set
            return record, None, None, f"could not be measured: {type(error).__name__}: {error}"

    if workers <= 1:
        for record in records:
            yield work(record)
        return
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="profile") as pool:
        for record in records:
            pending.append(pool.submit(work, record))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


NPY_HEADER_BYTES = 128


def npy_header(rows: int, columns: int) -> bytes:
    """The header of a .npy (format 1.0) of float32 rows x columns, padded to a fixed
    NPY_HEADER_BYTES whatever the row count, so that it can be rewritten in place once the
    rows are all appended."""
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}"
    room = NPY_HEADER_BYTES - 10 - 1  # magic + version + length, and the closing newline
    if len(text) > room:
        raise ValueError(f"{rows} x {columns} does not fit a {NPY_HEADER_BYTES}-byte header")
    body = (text.ljust(room) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


class _Writers:
    """The features Parquet (row groups of ROW_GROUP_ROWS), the raw embeddings and their keys,
    all under temporary names until `finish`."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.features_tmp = out_dir / f".{FEATURES_FILE}.partial"
        self.vectors_tmp = out_dir / f".{EMBEDDINGS_FILE}.partial"
        self.keys_tmp = out_dir / f".{EMBEDDING_KEYS_FILE}.partial"
        self.parquet = pq.ParquetWriter(self.features_tmp, FEATURE_SCHEMA)
        self.vectors = self.vectors_tmp.open("wb")
        self.vectors.write(npy_header(0, EMBEDDING_DIM))
        self.keys = self.keys_tmp.open("w", encoding="utf-8")
        self.rows: list[dict[str, Any]] = []
        self.batches: list[pa.RecordBatch] = []
        self.batched = 0
        self.embedded = 0

    def add(self, record: ImageRecord, row: dict | None, vector, error: str | None) -> None:
        full = {"key": record.key, "label": record.label, "ok": error is None, "error": error}
        if row is not None and vector is not None:
            full.update(row)
            full["embedding_row"] = self.embedded
            self.vectors.write(np.ascontiguousarray(vector, dtype="<f4").tobytes())
            self.keys.write(json.dumps(record.key) + "\n")
            self.embedded += 1
        self.rows.append(full)
        if len(self.rows) >= BATCH_ROWS:
            self._batch()
        if self.batched >= ROW_GROUP_ROWS:
            self.flush()

    def _batch(self) -> None:
        if self.rows:
            self.batches.append(pa.RecordBatch.from_pylist(self.rows, schema=FEATURE_SCHEMA))
            self.batched += len(self.rows)
            self.rows = []

    def flush(self) -> None:
        """Write what is buffered as one row group."""
        self._batch()
        if self.batches:
            table = pa.Table.from_batches(self.batches, schema=FEATURE_SCHEMA)
            self.parquet.write_table(table, row_group_size=max(1, self.batched))
            self.batches, self.batched = [], 0

    def finish(self) -> None:
        self.flush()
        self.parquet.close()
        self.vectors.close()
        self.keys.close()
        with self.vectors_tmp.open("r+b") as vectors:  # the row count is known now
            vectors.write(npy_header(self.embedded, EMBEDDING_DIM))
        self.features_tmp.replace(self.out_dir / FEATURES_FILE)
        self.vectors_tmp.replace(self.out_dir / EMBEDDINGS_FILE)
        self.keys_tmp.replace(self.out_dir / EMBEDDING_KEYS_FILE)

    def abort(self) -> None:
        for handle in (self.parquet, self.vectors, self.keys):
            with contextlib.suppress(Exception):  # half-written; the files go anyway
                handle.close()
        for path in self.out_dir.glob(".*.partial"):
            path.unlink(missing_ok=True)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _fixed_mmap_threshold(size: int = 256 * 1024) -> None:
    """Decoded images (a 512-px RGB image is 768 KiB) allocated by mmap and handed back to the
    system when freed. glibc raises its mmap threshold each time such a block is freed (up to
    32 MiB), after which the images come from the heap arenas of the measuring threads, whose
    freed pages it keeps: peak RSS then grew with the set. Fixing the threshold (mallopt, which
    also turns the dynamic adjustment off) keeps it flat. A no-op where the C library is not
    glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, size)
    except (OSError, AttributeError):  # not glibc: its allocator has its own policy
        pass


@contextlib.contextmanager
def _system_memory_pool() -> Iterator[None]:
    """Arrow allocations through the C library's malloc while the block runs.

    Arrow's default pool (mimalloc) keeps the pages of freed buffers mapped, so the batches of
    the stream and the columns the summary reads one at a time left the peak RSS growing with
    the set (the summary alone: +28 MiB from 5k to 50k images, measured); malloc hands them
    back, and the growth is the few arrays that really scale (+10 MiB). The pool is
    process-wide: the previous one is restored after."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


@_system_memory_pool()
def profile_images(
    records: Iterable[ImageRecord],
    out_dir: Path,
    *,
    faces: bool = False,
    ocr: bool | None = None,
    progress: Callable[[int], None] | None = None,
    phash_distance: int = 6,
    workers: int | None = None,
    max_pixels: int = features.MAX_PIXELS,
) -> ImageProfile:
    """Measure every record and write the profile into `out_dir` (see the module docstring).
    `progress(n)` is called with the count of images done after each one; `phash_distance` is
    the most differing bits for two images to be near-duplicates; `workers` threads measure
    (default: up to 4, one per CPU). Raises InvalidInputError for a set with no records and
    MissingBackendError for `ocr=True` without tesseract (before reading any record)."""
    if not 0 <= phash_distance < 64:
        raise InvalidInputError(f"phash_distance must be 0..63 bits, got {phash_distance}")
    ocr_available, ocr_reason = features.tesseract_available()
    if ocr and not ocr_available:
        raise features.MissingBackendError(f"OCR was asked for but {ocr_reason}")
    _fixed_mmap_threshold()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = _Writers(out_dir)
    failures: list[dict[str, str]] = []
    failed = done = 0
    try:
        stream = _measured(records, faces, ocr, workers or default_workers(), max_pixels)
        for record, row, vector, error in stream:
            writers.add(record, row, vector, error)
            if error is not None:
                failed += 1
                if len(failures) < FAILURE_LIMIT:
                    failures.append({"key": record.key, "reason": error})
            done += 1
            if progress is not None:
                progress(done)
        if done == 0:
            raise InvalidInputError("the image set is empty: there is nothing to profile")
        writers.finish()
    except BaseException:
        writers.abort()
        raise
    options = {"faces": faces, "ocr": ocr, "phash_distance": phash_distance}
    summary = summarise(out_dir / FEATURES_FILE, failures, failed, options)
    summary["ocr"] = {
        "requested": ocr,
        "available": ocr_available,
        "ran": bool(ocr_available and ocr is not False),
        "reason": None if ocr_available else ocr_reason,
    }
    _write_json(out_dir / PROFILE_FILE, summary)
    return ImageProfile.at(out_dir, summary)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2, sort_keys=False), encoding="utf-8")
    partial.replace(path)


# --- the summary, from the finished features Parquet, a column at a time -------------------


def summarise(
    features_path: Path, failures: list[dict[str, str]], failed: int, options: dict[str, Any]
) -> dict[str, Any]:
    """The profile JSON of a features Parquet (`failures`: the first listed, `failed`: all)."""
    file = pq.ParquetFile(features_path)

    def column(name: str, ok_only: bool = True) -> pa.ChunkedArray:
        table = file.read(columns=[name, "ok"], use_threads=False)  # one buffer set at a time
        return table.filter(table["ok"])[name] if ok_only else table[name]

    images = file.metadata.num_rows
    summary: dict[str, Any] = {
        "counts": {"images": images, "ok": images - failed, "failed": failed},
        "failures": failures,
        "failures_not_listed": max(0, failed - len(failures)),
        "options": options,
        "features": {name: numeric_summary(column(name)) for name in NUMERIC_FEATURES},
        "jpeg_quality": numeric_summary(column("jpeg_quality")),
        "modes": _value_counts(column("mode")),
        "formats": _value_counts(column("format")),
        "labels": _value_counts(column("label", ok_only=False)),
        "unlabelled": column("label", ok_only=False).null_count,
        "sizes": _size_mix(column("width"), column("height")),
        "aspects": _aspect_mix(column("aspect")),
        "faces": _faces_summary(column("faces")),
        "text": _text_summary(column("text")),
        "gps": {"images_with_gps": int(pc.sum(column("has_gps")).as_py() or 0)},
        "exif": {"images_with_exif": len(column("exif")) - column("exif").null_count},
    }
    summary["near_duplicates"] = near_duplicate_summary(
        column("key"), column("phash"), options["phash_distance"]
    )
    return summary


def numeric_summary(values: pa.ChunkedArray) -> dict[str, Any]:
    """count, min, max, mean, std, QUANTILES and a HISTOGRAM_BINS-bin histogram (edges and
    counts) of the non-null values; only `count` when there are none."""
    array = values.drop_null().to_numpy().astype(np.float64) if len(values) else np.zeros(0)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"count": 0}
    low, high = float(array.min()), float(array.max())
    span = (low, high) if high > low else (low, low + 1)
    counts, edges = np.histogram(array, bins=HISTOGRAM_BINS, range=span)
    quantiles = np.quantile(array, list(QUANTILES.values()))
    return {
        "count": int(array.size),
        "min": low,
        "max": high,
        "mean": float(array.mean()),
        "std": float(array.std()),
        **{name: float(q) for name, q in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _value_counts(values: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(values.drop_null())
    pairs = [(str(v["values"]), int(v["counts"])) for v in counts.to_pylist()]
    return dict(sorted(pairs, key=lambda p: (-p[1], p[0])))


def _size_mix(widths: pa.ChunkedArray, heights: pa.ChunkedArray) -> dict[str, Any]:
    table = pa.table({"width": widths, "height": heights})
    grouped = table.group_by(["width", "height"]).aggregate([("width", "count")])
    rows = sorted(grouped.to_pylist(), key=lambda r: (-r["width_count"], r["width"], r["height"]))
    return {
        "distinct": len(rows),
        "most_common": [
            {"width": r["width"], "height": r["height"], "count": r["width_count"]}
            for r in rows[:TOP_SIZES]
        ],
    }


def _aspect_mix(aspects: pa.ChunkedArray) -> dict[str, int]:
    values = aspects.to_numpy() if len(aspects) else np.zeros(0)
    bounds = np.array([b for _, b in ASPECT_BUCKETS[:-1]])
    buckets = np.searchsorted(bounds, values, side="right")
    counts = np.bincount(buckets, minlength=len(ASPECT_BUCKETS))
    return {name: int(n) for (name, _), n in zip(ASPECT_BUCKETS, counts, strict=True)}


def _faces_summary(faces: pa.ChunkedArray) -> dict[str, Any]:
    measured = faces.drop_null()
    if len(measured) == 0:
        return {"measured": False}
    values = measured.to_numpy()
    counts, images = np.unique(np.minimum(values, 5), return_counts=True)
    return {
        "measured": True,
        "images_with_faces": int((values > 0).sum()),
        "faces": int(values.sum()),
        # "5" counts the images with five faces or more
        "images_by_face_count": {
            str(c): int(n) for c, n in zip(counts.tolist(), images.tolist(), strict=True)
        },
    }


def _text_summary(texts: pa.ChunkedArray) -> dict[str, Any]:
    read = texts.drop_null()
    with_text = int(pc.sum(pc.greater(pc.utf8_length(read), 0)).as_py() or 0) if len(read) else 0
    return {"images_read": len(read), "images_with_text": with_text}


# --- near-duplicates: a banded index over the 64-bit perceptual hashes ---------------------


def popcount(values: np.ndarray) -> np.ndarray:
    """The set bits of each uint64 (numpy >= 2 has it built in; unpacked bytes before)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = np.ascontiguousarray(values).view(np.uint8).reshape(*values.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1, dtype=np.uint8)


# Hash comparisons held at once (a block of rows x a band group), and pairs gathered before
# they are merged into the clusters. Measured on 50k hashes in 12 near-duplicate families
# (band groups of thousands): 2^21 / 2^20 added 154 MiB to the peak RSS at 50k and 64 at 5k;
# 2^16 / 2^16 add 17 and 10, in the same time (4.7 s at 50k, the pairs themselves cost it).
_CELLS = 1 << 16
_PAIR_BUDGET = 1 << 16


def _pair_blocks(hashes: np.ndarray, distance: int) -> Iterator[np.ndarray]:
    """Index pairs (i < j) of uint64 hashes within `distance` bits, a block at a time (a pair
    may come once per band that it agrees on).

    Pigeonhole: split the 64 bits into distance + 1 bands; two hashes within `distance` bits
    agree exactly on at least one band. For each band the hashes are sorted by its value and
    only hashes of one value are compared (vectorised popcount), `_CELLS` comparisons at a time,
    so that a band value shared by thousands of images costs no more memory than a small one."""
    if len(hashes) < 2:
        return
    edges = np.linspace(0, 64, distance + 2).astype(int)
    for start, stop in itertools.pairwise(edges.tolist()):
        mask = np.uint64((1 << (stop - start)) - 1)
        values = (hashes >> np.uint64(start)) & mask
        order = np.argsort(values, kind="stable")
        boundaries = np.flatnonzero(np.diff(values[order])) + 1
        for group in np.split(order, boundaries):
            if len(group) < 2:
                continue
            group = np.sort(group)
            step = max(1, _CELLS // len(group))
            for first in range(0, len(group), step):
                rows = group[first : first + step]
                bits = popcount(hashes[rows][:, None] ^ hashes[group][None, :])
                i, j = np.nonzero(bits <= distance)
                left, right = rows[i], group[j]
                keep = left < right
                if keep.any():
                    yield np.stack([left[keep], right[keep]], axis=1)


def near_duplicate_pairs(hashes: np.ndarray, distance: int) -> np.ndarray:
    """Index pairs (i < j) of uint64 hashes that differ in at most `distance` bits, each once,
    sorted (see `_pair_blocks`)."""
    found = list(_pair_blocks(hashes, distance))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found), axis=0)


def _merge(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """`labels` (each node's representative, a node index) with `pairs` joined: the connected
    components of the edges node -> representative and the pairs, each named by its smallest
    node."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(labels)
    rows = np.concatenate([np.arange(n), pairs[:, 0]])
    cols = np.concatenate([labels, pairs[:, 1]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(n))
    return smallest[component]


def cluster_ids(hashes: np.ndarray, distance: int) -> np.ndarray:
    """For each uint64 hash, the id (0..k-1) of its near-duplicate cluster: the connected
    groups of hashes within `distance` bits of one another. Equal hashes are collapsed first,
    so that a thousand copies of one image cost one node, not half a million pairs; the pairs
    are merged into the clusters `_PAIR_BUDGET` at a time, so memory stays bounded however many
    near-duplicates the set holds."""
    unique, inverse = np.unique(hashes, return_inverse=True)
    labels = np.arange(len(unique), dtype=np.int64)
    pending: list[np.ndarray] = []
    held = 0
    for pairs in _pair_blocks(unique, distance):
        pending.append(pairs)
        held += len(pairs)
        if held >= _PAIR_BUDGET:
            labels, pending, held = _merge(labels, np.concatenate(pending)), [], 0
    if pending:
        labels = _merge(labels, np.concatenate(pending))
    dense = np.unique(labels, return_inverse=True)[1]
    return dense[inverse].astype(np.int64)


def hex_to_uint64(hex_hashes: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """16-hex-digit strings as uint64, vectorised over Arrow's buffers (no Python object per
    hash; about 40 bytes of temporary memory per hash)."""
    if len(hex_hashes) == 0:
        return np.zeros(0, dtype=np.uint64)
    fixed = pc.cast(hex_hashes, pa.binary(16))
    if isinstance(fixed, pa.ChunkedArray):
        fixed = fixed.combine_chunks()
    digits = np.frombuffer(fixed.buffers()[1], dtype=np.uint8, count=16 * len(fixed))
    digits = digits[16 * fixed.offset :].reshape(len(fixed), 16)
    lookup = np.zeros(256, dtype=np.uint8)
    lookup[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
    lookup[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint8)
    lookup[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16, dtype=np.uint8)
    nibbles = lookup[digits]
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return np.ascontiguousarray(packed).view(">u8").ravel().astype(np.uint64)


def near_duplicate_summary(
    keys: pa.ChunkedArray, hex_hashes: pa.ChunkedArray, distance: int
) -> dict[str, Any]:
    """Clusters of near-duplicate images (perceptual hashes within `distance` bits), the
    largest first (then by their first image), each with its size and the keys of (up to
    CLUSTER_KEYS of) its images in set order; CLUSTER_LIMIT clusters are listed."""
    present = pc.is_valid(hex_hashes)
    keys, hex_hashes = keys.filter(present), hex_hashes.filter(present)
    ids = cluster_ids(hex_to_uint64(hex_hashes), distance)
    sizes = np.bincount(ids) if len(ids) else np.zeros(0, dtype=np.int64)
    first = np.unique(ids, return_index=True)[1]  # every id occurs: ids are 0..k-1
    clustered = np.flatnonzero(sizes >= 2)
    order = clustered[np.lexsort((first[clustered], -sizes[clustered]))]
    top = order[:CLUSTER_LIMIT]
    rank = np.full(len(sizes), -1, dtype=np.int64)
    rank[top] = np.arange(len(top))
    members = np.flatnonzero(rank[ids] >= 0)  # the images of the listed clusters, in set order
    members = members[np.argsort(rank[ids[members]], kind="stable")]
    groups = np.split(members, np.cumsum(sizes[top])[:-1]) if len(top) else []
    listed = [
        {"size": int(sizes[c]), "keys": keys.take(pa.array(g[:CLUSTER_KEYS])).to_pylist()}
        for c, g in zip(top.tolist(), groups, strict=True)
    ]
    in_clusters = int(sizes[clustered].sum())
    return {
        "distance": distance,
        "clusters": len(clustered),
        "images_in_clusters": in_clusters,
        "redundant_images": in_clusters - len(clustered),
        "listed": listed,
        "clusters_not_listed": max(0, len(clustered) - CLUSTER_LIMIT),
    }
