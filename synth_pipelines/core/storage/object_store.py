"""Object store: one interface and a local-directory backend (S3 is in `s3_object_store`).

Keys are relative, "/"-separated paths (``faces/female/adult/abc.png``). Every write is atomic: a
reader sees either the whole new object or none of it, never a partial one.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from synth_pipelines.core.errors import InvalidInputError, ObjectNotFoundError, StorageError

# A local write in progress lives next to its final path under this suffix, hidden by list_keys.
_PARTIAL_SUFFIX = ".synth-partial"
_COPY_BUFFER = 1024 * 1024


def _default_file_mode() -> int:
    umask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise InvalidInputError.

    Rejected: empty keys, absolute paths, backslashes, NUL bytes, and empty, ``.`` or ``..``
    segments (so ``a//b`` and trailing slashes are rejected too).
    """
    if not isinstance(key, str) or not key:
        raise InvalidInputError("object key must be a non-empty string")
    if "\\" in key:
        raise InvalidInputError(f"object key {key!r} contains a backslash; use '/' separators")
    if "\x00" in key:
        raise InvalidInputError(f"object key {key!r} contains a NUL byte")
    if key.startswith("/"):
        raise InvalidInputError(f"object key {key!r} is absolute; keys are relative to the store")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInputError(
                f"object key {key!r} has an empty, '.' or '..' segment; "
                "use a plain relative path like 'faces/female/adult/abc.png'"
            )
        if segment.endswith(_PARTIAL_SUFFIX):
            raise InvalidInputError(
                f"object key {key!r} ends a segment with {_PARTIAL_SUFFIX!r}, "
                "which is reserved for writes in progress"
            )
    return key


def _validate_prefix(prefix: str) -> str:
    """A listing prefix may be empty or end with '/', but must not escape the store."""
    if not prefix:
        return ""
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


class ObjectStore(abc.ABC):
    """Where the factory keeps blobs: face images, dataset archives, adapters, exports.

    Missing keys raise ObjectNotFoundError, unusable stores StorageError, bad keys
    InvalidInputError.
    """

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing any object already there."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Stream the local file at ``path`` into ``key`` (for archives too large for memory)."""

    @abc.abstractmethod
    def open_writer(
        self, key: str, content_type: str | None = None
    ) -> contextlib.AbstractContextManager[IO[bytes]]:
        """Context manager yielding a binary file to write into.

        The object appears under ``key`` only when the block exits cleanly; if it raises, nothing
        is stored and any previous object under ``key`` is untouched.
        """

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Return the whole object under ``key``."""

    @abc.abstractmethod
    def open_reader(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """Context manager yielding a binary stream of the object under ``key``."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object under ``key``; a missing key is not an error."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete every key in ``keys``; missing keys are not an error."""
        for key in keys:
            self.delete(key)

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield every key starting with ``prefix`` (a plain string prefix), in sorted order."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of the object under ``key``."""

    @abc.abstractmethod
    def url(self, key: str, expires_in: int = 3600) -> str:
        """A URL to read ``key`` (``file://`` locally, presigned on S3); existence not checked."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise StorageError, naming the store and the cause, if the store cannot be used."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line naming the backend and location, for logs and metadata."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class LocalObjectStore(ObjectStore):
    """Objects as files under a root directory; writes go to a temp file, then ``os.replace``."""

    def __init__(self, root: str | Path, fsync: bool = False) -> None:
        if not str(root):
            raise InvalidInputError("LocalObjectStore needs a root directory; got an empty path")
        self.root = Path(root).expanduser().absolute()
        self._fsync = fsync

    def describe(self) -> str:
        return f"local:{self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _not_found(self, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"object {key!r} not found in {self.describe()}")

    @contextlib.contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as e:
            raise self._not_found(key) from e
        except IsADirectoryError as e:  # a key that is only a "folder" of other keys
            raise self._not_found(key) from e
        except OSError as e:
            raise StorageError(f"cannot {action} {key!r} in {self.describe()}: {e}") from e

    @contextlib.contextmanager
    def open_writer(self, key: str, content_type: str | None = None) -> Iterator[IO[bytes]]:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=_PARTIAL_SUFFIX
            )
        except OSError as e:
            raise StorageError(f"cannot write {key!r} in {self.describe()}: {e}") from e
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            # mkstemp creates 0600; give the object the mode a plain open() would.
            tmp_path.chmod(_FILE_MODE)
            os.replace(tmp_path, target)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        with self.open_writer(key, content_type) as handle:
            handle.write(data)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        source = Path(path)
        if not source.is_file():
            raise InvalidInputError(f"cannot store {key!r}: {source} is not a file")
        with source.open("rb") as src, self.open_writer(key, content_type) as dst:
            shutil.copyfileobj(src, dst, _COPY_BUFFER)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with self._os_errors("read", key):
            return path.read_bytes()

    @contextlib.contextmanager
    def open_reader(self, key: str) -> Iterator[IO[bytes]]:
        path = self._path(key)
        with self._os_errors("read", key):
            handle = path.open("rb")
        with handle:
            yield handle

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        # A key that names only a "folder" of other keys is not an object: nothing to delete.
        with (
            self._os_errors("delete", key),
            contextlib.suppress(FileNotFoundError, IsADirectoryError),
        ):
            path.unlink()

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        prefix = _validate_prefix(prefix)
        # Walk only the deepest directory the prefix pins down, not the whole store.
        start = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if not start.is_dir():
            return iter(())
        keys = []
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.endswith(_PARTIAL_SUFFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def size(self, key: str) -> int:
        path = self._path(key)
        with self._os_errors("stat", key):
            if not path.is_file():
                raise self._not_found(key)
            return path.stat().st_size

    def url(self, key: str, expires_in: int = 3600) -> str:
        return self._path(key).as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"local object store root {self.root} cannot be created: {e}") from e
        if not self.root.is_dir():
            raise StorageError(f"local object store root {self.root} is not a directory")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"local object store root {self.root} is not writable")


STORE_BACKENDS = ("local", "s3")


def open_object_store(
    backend: str,
    root: str = "",
    bucket: str = "",
    prefix: str = "",
    endpoint_url: str | None = None,
    region_name: str | None = None,
    profile_name: str | None = None,
    max_attempts: int = 3,
) -> ObjectStore:
    """The factory's object store from its configuration (no network I/O): a local directory
    (`root`) or an S3-compatible bucket (`bucket`, `prefix`, endpoint, region, profile). The
    Dagster resource and the API both build their store here."""
    if backend == "local":
        if not root:
            raise InvalidInputError(
                "the local object store needs root, the directory to keep objects in "
                "(SYNTH_STORE_ROOT)"
            )
        return LocalObjectStore(root)
    if backend == "s3":
        if not bucket:
            raise InvalidInputError(
                "the s3 object store needs bucket, the bucket name (SYNTH_S3_BUCKET)"
            )
        # Imported here: boto3 costs ~0.5 s of start-up that local runs skip.
        from synth_pipelines.core.storage.s3_object_store import S3ObjectStore, s3_client

        client = s3_client(endpoint_url, region_name, profile_name, max_attempts)
        return S3ObjectStore(bucket, prefix=prefix, client=client)
    raise InvalidInputError(
        f"object store backend {backend!r} is not one of: {', '.join(STORE_BACKENDS)} "
        "(SYNTH_STORE_BACKEND)"
    )
