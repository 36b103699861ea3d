"""Where a real image set comes from: a local folder, a `.zip`, an S3 prefix, a Parquet file of
image bytes or a Hugging Face `imagefolder` directory, read as one stream of `ImageRecord`s.

`open_source(spec)` picks the kind from the spec and checks, before it returns, that the source
exists and holds at least one image; iterating the `ImageSource` it returns streams the records
one at a time (never the whole set in memory), in a stable order.

The contract, the same for every kind, so that the same images give the same records:
- image files are recognised by extension (`IMAGE_EXTENSIONS`); hidden files and folders
  (a leading dot) and `__MACOSX/` are skipped;
- `key` is the image's path relative to the source root, posix, no leading slash;
- folders, zips and S3 prefixes are walked in the order of their sorted keys;
- `label` is the image's folder name (the imagefolder class subfolder: `cat/1.jpg` -> `cat`,
  `train/cat/1.jpg` -> `cat`) and None at the root, unless a `metadata.jsonl` gives it;
- a `metadata.jsonl` (Hugging Face imagefolder: one JSON object per line with `file_name`
  relative to the file's own folder) gives the images below its folder their metadata: a
  `label` field is the label, the other fields are the record's `metadata`;
- a Parquet file has an image column (`image`, or the first binary column) of raw bytes or of
  Hugging Face `{bytes, path}` structs, and optionally `label` (strings, or ints named by the
  file's Hugging Face ClassLabel feature) and `key`/`file_name`/`path`; a record file
  (`records.write_records`) is read as one.
"""

from __future__ import annotations

import json
import os
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from synth_pipelines.core.errors import InvalidInputError, StorageError
from synth_pipelines.core.imagesets.records import RECORD_SCHEMA, ImageRecord, read_records

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
METADATA_FILE = "metadata.jsonl"


def is_image_name(name: str) -> bool:
    """Whether a file name is an image by its extension (case-insensitive)."""
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


class ImageSource(ABC):
    """A readable image set. `kind` names its type; iterating streams its `ImageRecord`s."""

    kind: str

    @abstractmethod
    def describe(self) -> str:
        """One line naming the source for logs and error messages."""

    @abstractmethod
    def __iter__(self) -> Iterator[ImageRecord]: ...

    def select(self, keys: Iterable[str]) -> Iterator[ImageRecord]:
        """The records whose key is in `keys` (for thumbnails), in the source's order; stops
        reading once all of them were found."""
        wanted = set(keys)
        if not wanted:
            return
        for record in self:
            if record.key in wanted:
                wanted.discard(record.key)
                yield record
                if not wanted:
                    return

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


# --- folders, zips and S3 prefixes: trees walked in key order ------------------------------


class _TreeSource(ImageSource):
    """A tree of files walked depth-first in the order of the sorted full keys, one folder's
    listing at a time, with the folder-name labels and `metadata.jsonl` files of the contract."""

    @abstractmethod
    def _children(self, folder: str) -> tuple[list[str], list[str]]:
        """The file names and subfolder names directly inside `folder` ("" is the root)."""

    @abstractmethod
    def _read(self, key: str) -> bytes:
        """The bytes of the file at `key`."""

    def __iter__(self) -> Iterator[ImageRecord]:
        yield from self._walk("", {})

    def _walk(self, folder: str, metadata: dict[str, dict[str, Any]]) -> Iterator[ImageRecord]:
        files, folders = self._children(folder)
        files = [f for f in files if not _hidden(f)]
        if METADATA_FILE in files:
            metadata.update(self._metadata(folder))
        # Sorting a folder's subfolders as "name/" next to its file names gives the order of the
        # sorted full keys: everything below "a/" sorts together, right where "a/" sorts.
        entries = [(f, False) for f in files if is_image_name(f)]
        entries += [(d + "/", True) for d in folders if not _hidden(d)]
        for name, is_folder in sorted(entries):
            if is_folder:
                yield from self._walk(folder + name, metadata)
                continue
            key = folder + name
            fields = dict(metadata.pop(key, {}))
            label = fields.pop("label", None)
            if label is None and folder:
                label = PurePosixPath(folder).name
            yield ImageRecord(
                key=key,
                data=self._read(key),
                label=None if label is None else str(label),
                metadata=fields,
            )

    def _metadata(self, folder: str) -> dict[str, dict[str, Any]]:
        where = f"{self.describe()}: {folder}{METADATA_FILE}"
        rows: dict[str, dict[str, Any]] = {}
        text = self._read(folder + METADATA_FILE).decode("utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidInputError(f"{where} line {number} is not JSON: {error}") from None
            if not isinstance(row, dict) or not isinstance(row.get("file_name"), str):
                raise InvalidInputError(f"{where} line {number} has no 'file_name' string")
            name = str(PurePosixPath(row.pop("file_name")))
            rows[folder + name.lstrip("/")] = row
        return rows

    def _check_not_empty(self) -> None:
        """Walk until the first image (listings only, no image is read)."""
        pending = [""]
        while pending:
            folder = pending.pop()
            files, folders = self._children(folder)
            if any(is_image_name(f) and not _hidden(f) for f in files):
                return
            pending += [folder + d + "/" for d in folders if not _hidden(d)]
        raise InvalidInputError(
            f"{self.describe()} holds no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )


class FolderSource(_TreeSource):
    """A local folder; kind `imagefolder` when its root has a `metadata.jsonl`, else `folder`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.kind = "imagefolder" if (self.root / METADATA_FILE).is_file() else "folder"

    def describe(self) -> str:
        return f"{self.kind} {self.root}"

    def _children(self, folder: str) -> tuple[list[str], list[str]]:
        files, folders = [], []
        with os.scandir(self.root / folder) as entries:
            for entry in entries:
                (folders if entry.is_dir() else files).append(entry.name)
        return files, folders

    def _read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class ZipSource(_TreeSource):
    """A `.zip` archive; its members are read one at a time."""

    kind = "zip"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = [i.filename for i in archive.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as error:
            raise InvalidInputError(f"{self.path} is not a readable zip archive: {error}") from None
        self._tree: dict[str, tuple[list[str], list[str]]] = {"": ([], [])}
        for name in names:
            self._add(name.lstrip("/"))
        self._archive: zipfile.ZipFile | None = None

    def _add(self, name: str) -> None:
        parts = name.split("/")
        folder = ""
        for part in parts[:-1]:
            child = folder + part + "/"
            if child not in self._tree:
                self._tree[child] = ([], [])
                self._tree[folder][1].append(part)
            folder = child
        self._tree[folder][0].append(parts[-1])

    def describe(self) -> str:
        return f"zip {self.path}"

    def _children(self, folder: str) -> tuple[list[str], list[str]]:
        return self._tree.get(folder, ([], []))

    def _read(self, key: str) -> bytes:
        if self._archive is None:
            raise RuntimeError("zip archive read outside iteration")
        return self._archive.read(key)

    def __iter__(self) -> Iterator[ImageRecord]:
        if self._archive is not None:  # an iteration inside another (select while iterating)
            yield from super().__iter__()
            return
        with zipfile.ZipFile(self.path) as archive:
            self._archive = archive
            try:
                yield from super().__iter__()
            finally:
                self._archive = None


class S3Source(_TreeSource):
    """The objects under `s3://bucket/prefix`, listed a folder at a time (delimiter "/")."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str, client: Any):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client
        self.endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def _children(self, folder: str) -> tuple[list[str], list[str]]:
        base = self.prefix + folder
        files, folders = [], []
        token: dict[str, str] = {}
        while True:
            page = self._call(
                "list", self.client.list_objects_v2,
                Bucket=self.bucket, Prefix=base, Delimiter="/", **token,
            )  # fmt: skip
            files += [o["Key"][len(base) :] for o in page.get("Contents", [])]
            folders += [p["Prefix"][len(base) : -1] for p in page.get("CommonPrefixes", [])]
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        return [f for f in files if f], [d for d in folders if d]

    def _read(self, key: str) -> bytes:
        response = self._call("read", self.client.get_object, Bucket=self.bucket,
                              Key=self.prefix + key)  # fmt: skip
        return response["Body"].read()

    def _call(self, action: str, method: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404"):
                raise StorageError(
                    f"S3 bucket {self.bucket!r} does not exist at {self.endpoint or 'AWS'} "
                    f"(image source {self.describe()})"
                ) from None
            raise StorageError(f"cannot {action} {self.describe()}: {error}") from None
        except BotoCoreError as error:
            raise StorageError(f"cannot reach {self.describe()}: {error}") from None


# --- Parquet files of image bytes ----------------------------------------------------------


class ParquetSource(ImageSource):
    """A Parquet file with a column of encoded images, read a batch of rows at a time."""

    kind = "parquet"
    KEY_COLUMNS = ("key", "file_name", "path")

    def __init__(self, path: Path, batch_size: int = 64):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.batch_size = batch_size
        try:
            schema = pq.read_schema(self.path)
            self.rows = pq.ParquetFile(self.path).metadata.num_rows
        except (pa.ArrowException, OSError) as error:
            raise InvalidInputError(
                f"{self.path} is not a readable Parquet file: {error}"
            ) from None
        self.is_record_file = schema.remove_metadata().equals(RECORD_SCHEMA)
        self.image_column = self._image_column(schema)
        self.label_names = _class_label_names(schema)
        self.columns = [c for c in schema.names if c != self.image_column]

    def _image_column(self, schema: Any) -> str:
        import pyarrow as pa

        def is_image(t: Any) -> bool:
            if pa.types.is_binary(t) or pa.types.is_large_binary(t):
                return True
            return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0

        names = ["image", *[n for n in schema.names if n != "image"]]
        for name in names:
            if name in schema.names and is_image(schema.field(name).type):
                return name
        raise InvalidInputError(
            f"{self.describe()} has no image column: it needs `image` (or another column) of "
            f"binary image bytes or of {{bytes, path}} structs; its columns are {schema.names}"
        )

    def describe(self) -> str:
        return f"parquet {self.path}"

    def __iter__(self) -> Iterator[ImageRecord]:
        import pyarrow.parquet as pq

        if self.is_record_file:
            yield from read_records(self.path, batch_size=self.batch_size)
            return
        index = 0
        with pq.ParquetFile(self.path) as file:
            for batch in file.iter_batches(batch_size=self.batch_size):
                columns = batch.to_pydict()
                for row in range(batch.num_rows):
                    yield self._record(index, {c: v[row] for c, v in columns.items()})
                    index += 1

    def _file_bytes(self, index: int, path: str | None) -> bytes:
        """The bytes of a row that names its image by path only (Hugging Face datasets built
        from local files): the path as it is, or relative to the Parquet file's folder."""
        candidates = [Path(path), self.path.parent / path] if path else []
        for candidate in candidates:
            if candidate.is_file():
                return candidate.read_bytes()
        raise InvalidInputError(
            f"{self.describe()} row {index} has no image bytes"
            + (f" and its path {path!r} is not a file" if path else "")
        )

    def _record(self, index: int, row: dict[str, Any]) -> ImageRecord:
        image = row.pop(self.image_column)
        path = None
        if isinstance(image, dict):
            image, path = image.get("bytes"), image.get("path")
        if not image:
            image = self._file_bytes(index, path)
        key = next((row.pop(c) for c in self.KEY_COLUMNS if row.get(c) is not None), None)
        key = key or path or f"{index:08d}{_extension(image)}"
        label = row.pop("label", None)
        if isinstance(label, int) and self.label_names and 0 <= label < len(self.label_names):
            label = self.label_names[label]
        metadata = {c: v for c, v in row.items() if _is_json_scalar(v)}
        return ImageRecord(
            key=str(PurePosixPath(str(key))).lstrip("/"),
            data=bytes(image),
            label=None if label is None else str(label),
            metadata=metadata,
        )


def _class_label_names(schema: Any) -> list[str] | None:
    """The names of a Hugging Face ClassLabel `label` feature kept in the schema metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        feature = json.loads(raw)["info"]["features"]["label"]
    except (ValueError, KeyError, TypeError):
        return None
    names = feature.get("names") if isinstance(feature, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else None


def _is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _extension(data: bytes) -> str:
    """A file extension for unnamed image bytes, from their signature."""
    signatures = {
        b"\xff\xd8\xff": ".jpg",
        b"\x89PNG": ".png",
        b"GIF8": ".gif",
        b"BM": ".bmp",
        b"II*\x00": ".tif",
        b"MM\x00*": ".tif",
    }
    for signature, extension in signatures.items():
        if data.startswith(signature):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"


# --- opening a spec ------------------------------------------------------------------------


def open_source(spec: str, *, s3_client: Any = None) -> ImageSource:
    """The image source `spec` names: a folder (imagefolder when it has a `metadata.jsonl`), a
    `.zip`, a `.parquet` of image bytes, or `s3://bucket/prefix` (read with `s3_client`, or a
    boto3 client on SYNTH_S3_ENDPOINT_URL / AWS_ENDPOINT_URL when set).

    Raises InvalidInputError naming the source when it does not exist, is of no known kind or
    holds no images, and StorageError when its S3 bucket cannot be reached or does not exist."""
    spec = str(spec).strip()
    if not spec:
        raise InvalidInputError("no image source given: pass a folder, .zip, .parquet or s3:// URL")
    if spec.startswith("s3://"):
        source: ImageSource = _open_s3(spec, s3_client)
    else:
        source = _open_local(Path(spec).expanduser())
    if isinstance(source, _TreeSource):
        source._check_not_empty()
    elif isinstance(source, ParquetSource) and source.rows == 0:
        raise InvalidInputError(f"{source.describe()} holds no images (it has no rows)")
    return source


def _open_local(path: Path) -> ImageSource:
    if not path.exists():
        raise InvalidInputError(f"image source {path} does not exist")
    if path.is_dir():
        return FolderSource(path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return ZipSource(path)
    if suffix == ".parquet":
        return ParquetSource(path)
    raise InvalidInputError(
        f"image source {path} is not a folder, a .zip or a .parquet file (got {suffix or 'no'} "
        "extension)"
    )


def _open_s3(spec: str, client: Any) -> S3Source:
    bucket, _, prefix = spec[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidInputError(f"image source {spec!r} names no bucket: use s3://bucket/prefix")
    if client is None:
        from synth_pipelines.core.storage.s3_object_store import s3_client_from_env

        client = s3_client_from_env()
    return S3Source(bucket, prefix, client)
