"""Object store: one interface, a local-directory backend and an S3-compatible backend.

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
from typing import IO, Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from synth_pipelines.core.errors import InvalidInputError, ObjectNotFoundError, StorageError

# A local write in progress lives next to its final path under this suffix, hidden by list_keys.
_PARTIAL_SUFFIX = ".synth-partial"
_COPY_BUFFER = 1024 * 1024
# Streamed S3 writes stay in memory up to this size, then spill to a temporary file.
_SPOOL_MAX_MEMORY = 8 * 1024 * 1024
_S3_DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}


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


class S3ObjectStore(ObjectStore):
    """Objects in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO) under an optional prefix.

    Credentials come from the standard boto3 chain (environment, profile, instance role) unless a
    ready client is passed in.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        *,
        list_page_size: int = 1000,
        transfer_config: TransferConfig | None = None,
    ) -> None:
        if not bucket:
            raise InvalidInputError("S3ObjectStore needs a bucket name; got an empty one")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
        self.client = client if client is not None else _build_s3_client(endpoint_url, region_name)
        self.client.meta.events.register("choose-signer.s3.GetObject", _presign_with_sigv4)
        self.endpoint_url: str = self.client.meta.endpoint_url
        self._page_size = list_page_size
        self._transfer_config = transfer_config or TransferConfig()

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} @ {self.endpoint_url}"

    def _full_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _bucket_label(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.endpoint_url}"

    @contextlib.contextmanager
    def _s3_errors(self, action: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore/boto3 failures into StorageError / ObjectNotFoundError."""
        what = f"{action} {key!r} in {self.describe()}" if key else f"{action} {self.describe()}"
        try:
            yield
        except S3UploadFailedError as e:  # boto3's transfer layer flattens the ClientError
            raise StorageError(f"cannot {what}: {e}") from e
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = error.get("Message") or code
            if code == "NoSuchBucket":
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist at {self.endpoint_url}"
                ) from e
            if code in _NOT_FOUND_CODES and key is not None:
                raise ObjectNotFoundError(f"object {key!r} not found in {self.describe()}") from e
            if code in _DENIED_CODES:
                raise StorageError(
                    f"cannot {what}: access denied ({code}: {message}); "
                    "check the credentials and the bucket policy"
                ) from e
            raise StorageError(f"cannot {what}: {code}: {message}") from e
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise StorageError(
                f"cannot {what}: no usable AWS credentials ({e}); set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY or an AWS profile"
            ) from e
        except EndpointConnectionError as e:
            raise StorageError(
                f"{self._bucket_label()} is not reachable: {e}; check the endpoint URL"
            ) from e
        except BotoCoreError as e:
            raise StorageError(f"cannot {what}: {e}") from e

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        full_key = self._full_key(key)
        with self._s3_errors("write", key):
            self.client.put_object(Bucket=self.bucket, Key=full_key, Body=data, **extra)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        source = Path(path)
        if not source.is_file():
            raise InvalidInputError(f"cannot store {key!r}: {source} is not a file")
        full_key = self._full_key(key)
        with self._s3_errors("upload", key):
            self.client.upload_file(
                str(source),
                self.bucket,
                full_key,
                ExtraArgs={"ContentType": content_type} if content_type else None,
                Config=self._transfer_config,
            )

    @contextlib.contextmanager
    def open_writer(self, key: str, content_type: str | None = None) -> Iterator[IO[bytes]]:
        # Spool, then upload on clean exit: an exception uploads nothing, a crash leaves no
        # orphaned multipart upload in the bucket, and s3transfer does the multipart and retries.
        full_key = self._full_key(key)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX_MEMORY) as spool:
            yield spool
            spool.seek(0)
            with self._s3_errors("upload", key):
                self.client.upload_fileobj(
                    spool,
                    self.bucket,
                    full_key,
                    ExtraArgs={"ContentType": content_type} if content_type else None,
                    Config=self._transfer_config,
                )

    def get_bytes(self, key: str) -> bytes:
        with self.open_reader(key) as body, self._s3_errors("read", key):
            return body.read()

    @contextlib.contextmanager
    def open_reader(self, key: str) -> Iterator[IO[bytes]]:
        full_key = self._full_key(key)
        with self._s3_errors("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=full_key)["Body"]
        try:
            yield body
        finally:
            body.close()

    def _head(self, key: str) -> dict[str, Any]:
        full_key = self._full_key(key)
        with self._s3_errors("stat", key):
            return self.client.head_object(Bucket=self.bucket, Key=full_key)

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        full_key = self._full_key(key)
        with self._s3_errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=full_key)

    def delete_many(self, keys: Iterable[str]) -> None:
        full_keys = [self._full_key(key) for key in keys]
        for start in range(0, len(full_keys), _S3_DELETE_BATCH):
            batch = full_keys[start : start + _S3_DELETE_BATCH]
            with self._s3_errors("delete keys from"):
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    f"cannot delete {len(errors)} key(s) from {self.describe()}, first "
                    f"{first.get('Key')!r}: {first.get('Code')}: {first.get('Message')}"
                )

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        # Validate now, not on the first next() of the generator.
        return self._iter_keys(_validate_prefix(prefix))

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=root + prefix,
            PaginationConfig={"PageSize": self._page_size},
        )
        with self._s3_errors("list"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(root) :]

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def url(self, key: str, expires_in: int = 3600) -> str:
        full_key = self._full_key(key)
        with self._s3_errors("presign", key):
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": full_key},
                ExpiresIn=expires_in,
            )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES or code == "NoSuchBucket":
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist at {self.endpoint_url}; create it or "
                    "fix the bucket name"
                ) from e
            if code in _DENIED_CODES:
                raise StorageError(
                    f"{self._bucket_label()} refused access ({code}); check the credentials and "
                    "the bucket policy"
                ) from e
            raise StorageError(f"{self._bucket_label()} is not usable: {e}") from e
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise StorageError(
                f"{self._bucket_label()} cannot be used: no usable AWS credentials ({e})"
            ) from e
        except BotoCoreError as e:  # connection refused, DNS failure, timeouts
            raise StorageError(f"{self._bucket_label()} is not reachable: {e}") from e


def _presign_with_sigv4(signature_version: Any, **kwargs: Any) -> str | None:
    """Presign GET URLs with SigV4: botocore defaults to legacy SigV2 for presigned URLs in older
    AWS regions, which R2 and newer regions reject. Normal requests already use SigV4."""
    if signature_version in ("v4-query", "s3v4-query"):
        return "s3v4-query"
    return None


def _build_s3_client(endpoint_url: str | None, region_name: str | None) -> Any:
    """A boto3 S3 client that fails in seconds on a dead endpoint instead of minutes."""
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
        signature_version="s3v4",
        # MinIO and friends are usually addressed by a host name that has no per-bucket subdomain.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)
