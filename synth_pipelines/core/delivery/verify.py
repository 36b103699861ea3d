"""Reading a dataset archive back (zip or WebDataset tar, as archive.py writes them) and checking
every member against its manifest.json: sha256 and size, nothing missing or unlisted, and the
per-bucket counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from synth_pipelines.core.delivery.archive import _COPY_BUFFER, MANIFEST
from synth_pipelines.core.errors import ArchiveIntegrityError

__all__ = ["ArchiveIntegrityError", "verify_archive"]


def verify_archive(path: str | Path) -> dict:
    """Check a dataset archive (zip or webdataset tar) against its manifest.json.

    Recomputes the sha256 of every member, requires every member but the manifest to be listed
    and every listed file to be present, and checks the per-bucket counts against the images
    (zip) or the samples in the shards (webdataset). Returns the manifest; raises
    ArchiveIntegrityError naming the first file that is missing, unlisted, altered or unreadable.
    """
    path = Path(path)
    seen: dict[str, dict[str, Any]] = {}
    buckets: Counter[str] = Counter()
    manifest_bytes, fmt = None, _archive_format(path)
    with contextlib.closing(_members(path, fmt)) as members:
        for name, handle in members:
            if name in seen or (name == MANIFEST and manifest_bytes is not None):
                raise ArchiveIntegrityError(f"{name} appears twice in {path.name}")
            try:
                if name == MANIFEST:
                    manifest_bytes = handle.read()
                    continue
                seen[name] = _hash_stream(handle)
                if fmt == "webdataset" and name.startswith("shards/"):
                    handle.seek(0)
                    buckets.update(_shard_classes(handle, name))
                elif fmt == "zip" and name.startswith("images/"):
                    buckets[name.rsplit("/", 1)[0].removeprefix("images/")] += 1
            except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as exc:
                raise ArchiveIntegrityError(f"{name} in {path.name} is unreadable: {exc}") from exc
    manifest = _parse_manifest(manifest_bytes, path)
    listed = manifest["files"]
    for name, actual in seen.items():
        if name not in listed:
            raise ArchiveIntegrityError(f"{name} is in {path.name} but not in its manifest")
        entry = listed[name] if isinstance(listed[name], dict) else {}
        if actual != {"sha256": entry.get("sha256"), "bytes": entry.get("bytes")}:
            raise ArchiveIntegrityError(f"{name} does not match its sha256 in the manifest")
    for name in listed:
        if name not in seen:
            raise ArchiveIntegrityError(f"{name} is in the manifest but not in {path.name}")
    if manifest.get("format") != fmt:
        raise ArchiveIntegrityError(f"{path.name} is a {fmt} archive; its manifest says otherwise")
    if fmt == "webdataset":
        classes = manifest.get("classes") or []
        buckets = Counter({_class_name(c, classes): n for c, n in buckets.items()})
    counts = dict(manifest["counts"])
    total = counts.pop("total", None)
    if dict(buckets) != counts or total != sum(buckets.values()):
        raise ArchiveIntegrityError(
            f"{path.name} holds {dict(sorted(buckets.items()))} faces, but its manifest counts "
            f"{manifest['counts']}"
        )
    return manifest


def _archive_format(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise ArchiveIntegrityError(f"cannot read {path}: {exc}") from exc
    if head[:2] == b"PK":
        return "zip"
    if head[257:262] == b"ustar":
        return "webdataset"
    raise ArchiveIntegrityError(f"{path.name} is neither a zip nor a tar archive")


def _members(path: Path, fmt: str) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, open member) for every member; anything but a regular file is an error."""
    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as bundle:
                for info in bundle.infolist():
                    if info.is_dir():
                        raise ArchiveIntegrityError(f"{info.filename} in {path.name} is a folder")
                    with bundle.open(info) as handle:
                        yield info.filename, handle
            return
        with tarfile.open(path, mode="r:") as bundle:
            for info in bundle:
                handle = bundle.extractfile(info) if info.isfile() else None
                if handle is None:
                    raise ArchiveIntegrityError(f"{info.name} in {path.name} is not a regular file")
                with handle:
                    yield info.name, handle
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise ArchiveIntegrityError(f"{path.name} cannot be read: {exc}") from exc


def _hash_stream(handle: IO[bytes]) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(_COPY_BUFFER):
        digest.update(chunk)
        size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


def _shard_classes(handle: IO[bytes], name: str) -> Counter[str]:
    """The .cls values of a shard's samples; each sample must have its .png, .json and .cls."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=handle, mode="r:") as shard:
        for info in shard:
            key, _, ext = info.name.partition(".")
            member = shard.extractfile(info) if ext in ("cls", "png", "json") else None
            samples.setdefault(key, {})[ext] = member.read() if ext == "cls" and member else b""
    for key, parts in samples.items():
        if set(parts) != {"png", "json", "cls"}:
            raise ArchiveIntegrityError(
                f"sample {key} in {name} has {sorted(parts)}, not png, json and cls"
            )
    return Counter(parts["cls"].decode() for parts in samples.values())


def _class_name(cls: str, classes: list[str]) -> str:
    if not cls.isdigit() or int(cls) >= len(classes):
        raise ArchiveIntegrityError(f"a sample's class {cls!r} is not an index into {classes}")
    return classes[int(cls)]


def _parse_manifest(data: bytes | None, path: Path) -> dict[str, Any]:
    if data is None:
        raise ArchiveIntegrityError(f"{path.name} has no {MANIFEST}")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ArchiveIntegrityError(f"{MANIFEST} in {path.name} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not all(
        isinstance(manifest.get(field), dict) for field in ("files", "counts")
    ):
        raise ArchiveIntegrityError(f"{MANIFEST} in {path.name} lacks its files or counts")
    return manifest
