"""Uploaded subject photos: loose files and .zip archives, expanded safely into (name, bytes).

Nothing is written to disk: members are read into memory under their base name, so a member
named "../../etc/passwd" cannot land anywhere; such names are skipped all the same, as are
folders, macOS resource forks (__MACOSX/, ._*), hidden files and symlinks.
"""

from __future__ import annotations

import stat
import zipfile
from io import BytesIO

from synth_pipelines.core.errors import InvalidInputError

MIN_PHOTOS, MAX_PHOTOS = 4, 50
MAX_UPLOAD_BYTES = 500 * 1024 * 1024  # uncompressed, all files together
MAX_ARCHIVE_MEMBERS = 1000  # entries in one archive, folders and skipped files included
_JUNK = frozenset({"thumbs.db", "desktop.ini"})


def base_name(name: str) -> str:
    """The file name without any folder ('C:\\\\fakepath\\\\a.jpg' and 'x/a.jpg' -> 'a.jpg')."""
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].strip()


def unique_names(names: list[str]) -> list[str]:
    """Base names, made unique in order: a second 'a.jpg' becomes 'a (2).jpg'."""
    seen: set[str] = set()
    out: list[str] = []
    for k, name in enumerate(names):
        name = base_name(name) or f"photo_{k + 1}"
        stem, dot, suffix = name.rpartition(".")
        if not dot:
            stem, suffix = name, ""
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{stem} ({n}){dot}{suffix}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _unsafe_or_junk(info: zipfile.ZipInfo) -> bool:
    path = info.filename.replace("\\", "/")
    parts = [p for p in path.split("/") if p]
    if info.is_dir() or not parts:
        return True
    if path.startswith("/") or ".." in parts or ":" in parts[0]:  # absolute, traversal, drive
        return True
    if "__MACOSX" in parts or parts[-1].startswith(".") or parts[-1].lower() in _JUNK:
        return True
    return stat.S_ISLNK(info.external_attr >> 16)


def _expand(name: str, data: bytes, budget: int) -> list[tuple[str, bytes]]:
    """The usable members of one archive, reading at most `budget` bytes in all."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"'{name}' is not a readable zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise InvalidInputError(
                f"'{name}' holds {len(infos)} entries, at most {MAX_ARCHIVE_MEMBERS}: "
                f"upload at most {MAX_PHOTOS} photos"
            )
        members = [info for info in infos if not _unsafe_or_junk(info)]
        if len(members) > MAX_PHOTOS:  # before reading any: the count alone says no
            raise _too_many(len(members))
        if sum(info.file_size for info in members) > budget:
            raise _too_big()
        out: list[tuple[str, bytes]] = []
        for info in members:
            try:
                with archive.open(info) as member:
                    # The header's size may lie: read one byte past the budget to find out.
                    content = member.read(budget + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
                # RuntimeError: encrypted; NotImplementedError: an unsupported compression.
                raise InvalidInputError(
                    f"cannot read '{info.filename}' in '{name}': {exc}"
                ) from exc
            budget -= len(content)
            if budget < 0:
                raise _too_big()
            out.append((base_name(info.filename), content))
        return out


def _too_big() -> InvalidInputError:
    return InvalidInputError(
        f"the upload unpacks to more than {MAX_UPLOAD_BYTES // 2**20} MB: "
        f"send at most {MAX_PHOTOS} photos, resized to a few megapixels each"
    )


def _too_many(count: int) -> InvalidInputError:
    return InvalidInputError(
        f"{count} files uploaded, at most {MAX_PHOTOS}: keep the best "
        f"{MIN_PHOTOS}-{MAX_PHOTOS} photos of the subject"
    )


def read_upload(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Uploaded (file name, bytes) -> (unique base name, bytes) of each photo candidate.

    A file named *.zip is expanded into its members (see the module docstring for what is
    skipped); other files pass through unchanged, to be accepted or rejected with a reason by
    `prepare_photos`. InvalidInputError for a broken or oversized archive, for none at all or
    more than 50 files, or more than 500 MB unpacked.
    """
    out: list[tuple[str, bytes]] = []
    budget = MAX_UPLOAD_BYTES
    for name, data in files:
        if base_name(name).lower().endswith(".zip"):
            members = _expand(base_name(name), data, budget)
        else:
            members = [(name, data)]
        budget -= sum(len(content) for _, content in members)
        if budget < 0:
            raise _too_big()
        out.extend(members)
    if not out:
        raise InvalidInputError(
            f"no photos in the upload: send {MIN_PHOTOS}-{MAX_PHOTOS} images (or a .zip of them)"
        )
    if len(out) > MAX_PHOTOS:
        raise _too_many(len(out))
    names = unique_names([name for name, _ in out])
    return [(unique, data) for unique, (_, data) in zip(names, out, strict=True)]
