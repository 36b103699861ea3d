"""Dataset archives: faces streamed from the object store into one zip or WebDataset tar, with
labels, a sha256 manifest of every file and a dataset card. verify.py reads one back and checks
it against its manifest.

zip:         images/<gender>/<age_group>/<id>.png (stored as is: PNG is already compressed),
             metadata.jsonl (Hugging Face imagefolder), labels.csv, README.md, manifest.json.
webdataset:  one uncompressed tar holding shards/shard-000000.tar … (at most `shard_size` samples
             each: <id>.png, <id>.json labels, <id>.cls), labels.csv, README.md, manifest.json.
             No metadata.jsonl: each sample's .json carries its labels. `.cls` is an integer
             (WebDataset and Hugging Face decode it with int()): the index of the sample's bucket
             in the manifest's `classes`.

manifest.json lists the sha256 and size of every other file in the archive.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import re
import tarfile
import tempfile
import time
import zipfile
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from PIL import Image, UnidentifiedImageError

from synth_pipelines.core.cpus import usable_cpus
from synth_pipelines.core.errors import (
    ArchiveIntegrityError,
    InvalidInputError,
    UnknownBucketError,
)
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS
from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore
from synth_pipelines.core.storage.streams import ForwardWriter, HashingWriter

__all__ = [
    "ArchiveFace",
    "ArchiveIntegrityError",
    "ArchiveResult",
    "write_dataset_archive",
]

MANIFEST = "manifest.json"
FORMATS = ("zip", "webdataset")
CONTENT_TYPES = {"zip": "application/zip", "webdataset": "application/x-tar"}
# A webdataset sample's .cls is its bucket's index here: fixed, so indices agree across datasets.
CLASSES: tuple[str, ...] = ALL_BUCKET_KEYS
LABEL_COLUMNS = (
    "file_name", "id", "gender", "age_group", "seed", "generator", "classifier",
    "face_detected", "predicted_gender", "gender_confidence", "predicted_age", "age_confidence",
)  # fmt: skip
# No dots: WebDataset splits a member name into sample key and extension at the first dot.
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Reader threads: copying from a local disk, one is fastest (more only contend for the GIL);
# resizing is CPU-bound, one per core; on S3 each GET waits on the network, so several overlap
# (botocore pools 10 connections by default).
_LOCAL_FETCH_WORKERS = 1
_RESIZE_FETCH_WORKERS = usable_cpus()
_REMOTE_FETCH_WORKERS = 8
_FETCH_AHEAD = 16  # images read ahead of the writer, so memory stays bounded on any dataset size
_SHARD_SPOOL_MEMORY = 256 * 1024 * 1024  # a larger shard is spooled to disk
_COPY_BUFFER = 1024 * 1024
_PNG_COMPRESS_LEVEL = 1  # resized images: fast to encode, a few % larger than level 6


@dataclass(frozen=True)
class ArchiveFace:
    """One face to package, as recorded in the factory database."""

    id: str
    gender: str
    age_group: str
    object_key: str
    sha256: str  # of the stored PNG bytes
    width: int
    height: int
    generator: str
    seed: int
    classifier: str
    face_detected: bool
    predicted_gender: str | None
    predicted_age: float | None
    gender_confidence: float | None
    age_confidence: float | None
    attributes: dict

    @property
    def bucket(self) -> str:
        return f"{self.gender}/{self.age_group}"

    def labels(self, file_name: str) -> dict[str, Any]:
        """One row of metadata.jsonl / labels.csv: `file_name` plus the LABEL_COLUMNS."""
        return {"file_name": file_name} | {k: getattr(self, k) for k in LABEL_COLUMNS[1:]}


@dataclass
class ArchiveResult:
    key: str  # object-store key written
    bytes: int  # archive size
    files: int  # members, manifest.json included (webdataset: the outer tar's, shards not samples)
    seconds: float
    faces_per_bucket: dict[str, int]  # "female/adult" -> n
    manifest: dict  # the manifest.json content


@dataclass(frozen=True)
class _Image:
    face: ArchiveFace
    data: bytes
    sha256: str  # of `data`, the bytes written to the archive


def write_dataset_archive(
    store: ObjectStore,
    key: str,
    faces: Sequence[ArchiveFace],
    *,
    request_id: str,
    spec: dict,
    fmt: str = "zip",
    image_size: int | None = None,
    shard_size: int = 1000,
) -> ArchiveResult:
    """Stream `faces` from `store` into one archive written to `key` of the same store.

    `fmt` is "zip" or "webdataset"; `image_size` (pixels, square) resizes faces stored at another
    size, None keeps them as stored; `shard_size` caps the samples per WebDataset shard.
    Every stored image is checked against its recorded sha256 on the way (ArchiveIntegrityError
    names a mismatch); a missing one raises ObjectNotFoundError. On any error nothing is left
    under `key`. Bad arguments raise InvalidInputError before anything is read.
    """
    started = time.perf_counter()
    _check_arguments(faces, fmt, image_size, shard_size)
    counts = Counter(face.bucket for face in faces)
    created = datetime.now(UTC).replace(microsecond=0)
    files: dict[str, dict[str, Any]] = {}
    manifest = {
        "request_id": request_id,
        "created_at": created.isoformat(),
        "format": fmt,
        "image_size": image_size or _common_size(faces),
        "spec": spec,
        "counts": dict(sorted(counts.items())) | {"total": len(faces)},
        "generators": sorted({face.generator for face in faces}),
        "classifiers": sorted({face.classifier for face in faces}),
        "seeds": {face.id: face.seed for face in faces},
        "files": files,
    }
    if fmt == "webdataset":
        manifest |= {"classes": list(CLASSES), "shard_size": shard_size}
    with (
        store.open_writer(key, content_type=CONTENT_TYPES[fmt]) as raw,
        _prefetched(store, faces, image_size) as images,
    ):
        out = raw if raw.seekable() else ForwardWriter(raw)
        if fmt == "zip":
            _write_zip(out, images, manifest, created)
        else:
            _write_webdataset(out, images, manifest, created, shard_size)
        size = out.tell()
    return ArchiveResult(
        key=key,
        bytes=size,
        files=len(files) + 1,
        seconds=time.perf_counter() - started,
        faces_per_bucket=dict(sorted(counts.items())),
        manifest=manifest,
    )


def _check_arguments(
    faces: Sequence[ArchiveFace], fmt: str, image_size: int | None, shard_size: int
) -> None:
    if fmt not in FORMATS:
        raise InvalidInputError(f"archive format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise InvalidInputError(f"image_size must be a positive integer or None, not {image_size}")
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise InvalidInputError(f"shard_size must be a positive integer, not {shard_size!r}")
    if not faces:
        raise InvalidInputError("a dataset archive needs at least one face; got none")
    seen: set[str] = set()
    for face in faces:
        # Ids and buckets become member names: keep them to known, path-safe values.
        if face.bucket not in CLASSES:
            raise UnknownBucketError(
                f"face {face.id!r} has bucket '{face.bucket}', not one of: {', '.join(CLASSES)}"
            )
        if not isinstance(face.id, str) or not _SAFE_ID.fullmatch(face.id):
            raise InvalidInputError(
                f"face id {face.id!r} is not 1-64 letters, digits, '_' or '-'; "
                "it cannot name a file in the archive"
            )
        if face.id in seen:
            raise InvalidInputError(f"face {face.id} is listed twice; each face is packaged once")
        seen.add(face.id)


def _common_size(faces: Sequence[ArchiveFace]) -> int | None:
    """The stored images' side when all are the same square size, else None."""
    sizes = {(face.width, face.height) for face in faces}
    if len(sizes) == 1 and (size := sizes.pop())[0] == size[1]:
        return size[0]
    return None


def _load_image(store: ObjectStore, face: ArchiveFace, image_size: int | None) -> _Image:
    """The face's bytes as they go into the archive: checked, then resized if asked."""
    data = store.get_bytes(face.object_key)
    digest = hashlib.sha256(data).hexdigest()
    if digest != face.sha256:
        raise ArchiveIntegrityError(
            f"stored image {face.object_key!r} of face {face.id} has sha256 {digest}, not the "
            f"recorded {face.sha256}: it changed after it was stored, so it is not delivered; "
            "remove the face from the inventory and package the request again"
        )
    if image_size is None or (face.width, face.height) == (image_size, image_size):
        return _Image(face, data, digest)
    try:
        with Image.open(io.BytesIO(data)) as source:
            image = source if source.mode in ("RGB", "RGBA", "L", "LA") else source.convert("RGB")
            resized = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError) as exc:
        raise ArchiveIntegrityError(
            f"stored image {face.object_key!r} of face {face.id} cannot be decoded: {exc}"
        ) from exc
    buffer = io.BytesIO()
    resized.save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    data = buffer.getvalue()
    return _Image(face, data, hashlib.sha256(data).hexdigest())


@contextlib.contextmanager
def _prefetched(
    store: ObjectStore, faces: Sequence[ArchiveFace], image_size: int | None
) -> Iterator[Iterator[_Image]]:
    """The faces' images in order, read, checked and resized by a few threads ahead of the writer.

    At most _FETCH_AHEAD images wait in memory. On exit (an error included) reads not started
    are cancelled and running ones awaited, so no thread outlives the archive.
    """
    resizing = image_size is not None and any(
        (face.width, face.height) != (image_size, image_size) for face in faces
    )
    if not isinstance(store, LocalObjectStore):
        workers = _REMOTE_FETCH_WORKERS
    else:
        workers = _RESIZE_FETCH_WORKERS if resizing else _LOCAL_FETCH_WORKERS
    pool = ThreadPoolExecutor(workers, thread_name_prefix="archive-fetch")
    pending: deque[Future[_Image]] = deque()

    def images() -> Iterator[_Image]:
        todo = iter(faces)
        for face in itertools.islice(todo, _FETCH_AHEAD):
            pending.append(pool.submit(_load_image, store, face, image_size))
        while pending:
            image = pending.popleft().result()
            for face in itertools.islice(todo, 1):
                pending.append(pool.submit(_load_image, store, face, image_size))
            yield image

    try:
        yield images()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _record(files: dict[str, dict[str, Any]], name: str, data: bytes, digest: str = "") -> bytes:
    files[name] = {"sha256": digest or hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return data


def _write_zip(
    out: IO[bytes], images: Iterator[_Image], manifest: dict[str, Any], created: datetime
) -> None:
    files, rows = manifest["files"], []
    stamp = created.timetuple()[:6]

    def member(name: str, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type, info.external_attr = compress_type, 0o644 << 16
        return info

    with zipfile.ZipFile(out, mode="w") as bundle:
        for image in images:
            face = image.face
            name = f"images/{face.gender}/{face.age_group}/{face.id}.png"
            data = _record(files, name, image.data, image.sha256)
            bundle.writestr(member(name, zipfile.ZIP_STORED), data)
            rows.append(face.labels(name))
        metadata = "".join(json.dumps(row) + "\n" for row in rows).encode()
        for name, data in (
            ("metadata.jsonl", metadata),
            ("labels.csv", _labels_csv(rows, LABEL_COLUMNS)),
            ("README.md", dataset_card(manifest).encode()),
        ):
            bundle.writestr(member(name), _record(files, name, data))
        bundle.writestr(member(MANIFEST), json.dumps(manifest, indent=1).encode())


def _tar_add(
    bundle: tarfile.TarFile, name: str, data: IO[bytes] | bytes, size: int, mtime: int
) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    bundle.addfile(info, io.BytesIO(data) if isinstance(data, bytes) else data)


def _write_webdataset(
    out: IO[bytes],
    images: Iterator[_Image],
    manifest: dict[str, Any],
    created: datetime,
    shard_size: int,
) -> None:
    files, rows, mtime = manifest["files"], [], int(created.timestamp())
    # mode "w" (not "w|"): writes go straight through; the stream mode re-buffers every block.
    with tarfile.open(fileobj=out, mode="w", copybufsize=_COPY_BUFFER) as outer:
        for number in itertools.count():
            first = next(images, None)
            if first is None:
                break
            name = f"shards/shard-{number:06d}.tar"
            # The outer header needs the shard's size first, so the shard is built aside.
            with tempfile.SpooledTemporaryFile(_SHARD_SPOOL_MEMORY) as spool:
                sink = HashingWriter(spool)
                with tarfile.open(
                    fileobj=sink, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=_COPY_BUFFER
                ) as shard:
                    for image in itertools.chain([first], itertools.islice(images, shard_size - 1)):
                        face = image.face
                        labels = face.labels(f"{face.id}.png") | {"bucket": face.bucket}
                        cls = str(CLASSES.index(face.bucket)).encode()
                        sample = json.dumps(labels).encode()
                        _tar_add(shard, f"{face.id}.png", image.data, len(image.data), mtime)
                        _tar_add(shard, f"{face.id}.json", sample, len(sample), mtime)
                        _tar_add(shard, f"{face.id}.cls", cls, len(cls), mtime)
                        rows.append(labels | {"shard": name})
                files[name] = {"sha256": sink.hash.hexdigest(), "bytes": sink.written}
                spool.seek(0)
                _tar_add(outer, name, spool, sink.written, mtime)
        for name, data in (
            ("labels.csv", _labels_csv(rows, (*LABEL_COLUMNS, "shard"))),
            ("README.md", dataset_card(manifest).encode()),
        ):
            _tar_add(outer, name, _record(files, name, data), len(data), mtime)
        data = json.dumps(manifest, indent=1).encode()
        _tar_add(outer, MANIFEST, data, len(data), mtime)


def _labels_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def dataset_card(manifest: dict[str, Any]) -> str:
    """README.md of an archive: what it holds, how it was made, how to load and verify it."""
    fmt, counts = manifest["format"], dict(manifest["counts"])
    total = counts.pop("total")
    table = "\n".join(f"| {bucket} | {n:,} |" for bucket, n in counts.items())
    size = manifest["image_size"]
    if fmt == "zip":
        layout = (
            "- `images/<gender>/<age_group>/<id>.png` — the images.\n"
            "- `metadata.jsonl` — one line of labels per image (`file_name` is its path here), "
            "as Hugging Face `imagefolder` reads it."
        )
        load = (
            "from datasets import load_dataset\n\n"
            'ds = load_dataset("imagefolder", data_dir="<unzipped folder>", split="train")'
        )
    else:
        last = sum(1 for name in manifest["files"] if name.startswith("shards/")) - 1
        classes = ", ".join(f"{i} = {name}" for i, name in enumerate(manifest["classes"]))
        layout = (
            f"- `shards/shard-000000.tar` … — WebDataset shards of at most "
            f"{manifest['shard_size']:,} samples: `<id>.png`, `<id>.json` (labels), `<id>.cls` "
            f"(class index: {classes})."
        )
        load = (
            "from datasets import load_dataset\n\n"
            'ds = load_dataset("webdataset", data_files="<untarred folder>/shards/*.tar", '
            'split="train")\n\n'
            "# or, streaming with the webdataset library:\n"
            "import webdataset as wds\n\n"
            f'ds = wds.WebDataset("shards/shard-{{000000..{last:06d}}}.tar").decode("pil")'
        )
    return f"""# Synthetic faces — dataset {manifest["request_id"]}

{total:,} synthetic face images, labelled by gender and age group. Every face was generated;
none shows a real person.

| bucket (gender/age_group) | images |
|---|---|
{table}
| **total** | **{total:,}** |

## How it was made
- Generator(s): {", ".join(manifest["generators"])}. Each face's `seed` (in the labels and in
  `manifest.json`) re-renders it exactly with the same generator.
- Classifier(s): {", ".join(manifest["classifiers"])}. Each face was checked by it; its reading
  (`face_detected`, `predicted_gender`, `predicted_age` and their confidences) is kept beside
  the label the face was delivered under (`gender`, `age_group`).
- Images: PNG, {f"{size}x{size} px" if isinstance(size, int) else "sizes as generated"}.
  Created {manifest["created_at"]}. Request: `{json.dumps(manifest["spec"], sort_keys=True)}`.

## Files
{layout}
- `labels.csv` — the same labels as a table, one row per image.
- `manifest.json` — counts, generators, classifiers, seeds, the request, and the sha256 and size
  of every other file in this archive.

## Load
```python
{load}
```

## Verify
Every file is listed in `manifest.json` with its sha256. After unpacking:
```python
import hashlib, json, pathlib

root = pathlib.Path("<unpacked folder>")
files = json.loads((root / "manifest.json").read_text())["files"]
bad = [p for p, f in files.items()
       if hashlib.sha256((root / p).read_bytes()).hexdigest() != f["sha256"]]
print("all files verified" if not bad else f"altered or missing: {{bad}}")
```
(`synth_pipelines.core.delivery.verify.verify_archive(path)` checks the archive as delivered.)

## License
The images are synthetic and depict no real person. They are delivered for the use agreed with
the requester of dataset {manifest["request_id"]}; images made by a third-party model also
follow that model's license. Labels come from the generator's intent and an automatic
classifier, not from human annotation: check them before relying on them.
"""
