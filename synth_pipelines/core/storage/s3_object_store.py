"""The S3-compatible object store backend (AWS S3, Cloudflare R2, MinIO) on boto3."""

from __future__ import annotations

import contextlib
import os
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
from synth_pipelines.core.storage.object_store import (
    ObjectStore,
    _validate_prefix,
    validate_key,
)

# Streamed S3 writes stay in memory up to this size, then spill to a temporary file.
_SPOOL_MAX_MEMORY = 8 * 1024 * 1024
_S3_DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}


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
        self.client = client if client is not None else s3_client(endpoint_url, region_name)
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


def s3_client(
    endpoint_url: str | None,
    region_name: str | None,
    profile_name: str | None = None,
    max_attempts: int = 3,
) -> Any:
    """A boto3 S3 client that fails in seconds on a dead endpoint instead of minutes; credentials
    from the standard chain (or `profile_name`), `max_attempts` per call with standard retries."""
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        signature_version="s3v4",
        # MinIO and friends are usually addressed by a host name that has no per-bucket subdomain.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    session = boto3.session.Session(profile_name=profile_name)
    return session.client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config)


# Where an s3:// source outside the factory's own bucket is read from, first set wins.
S3_ENDPOINT_VARIABLES = ("SYNTH_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")


def s3_client_from_env(max_attempts: int = 2) -> Any:
    """A client for reading s3:// sources: the endpoint of S3_ENDPOINT_VARIABLES (else AWS),
    AWS_DEFAULT_REGION, the standard credential chain."""
    endpoint = next((os.environ[v] for v in S3_ENDPOINT_VARIABLES if os.environ.get(v)), None)
    return s3_client(endpoint, os.environ.get("AWS_DEFAULT_REGION"), max_attempts=max_attempts)
