"""The object store's behaviour, the same tests on a local directory and on moto's S3 server."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import boto3
import dagster as dg
import pytest
from boto3.s3.transfer import TransferConfig

from synth_pipelines.core.errors import InvalidInputError, ObjectNotFoundError, StorageError
from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore
from synth_pipelines.core.storage.s3_object_store import S3ObjectStore
from synth_pipelines.resources.object_store import ObjectStoreResource
from tests.conftest import REGION, make_bucket
from tests.helpers import free_port, local_or_s3_store

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _fake_aws(aws_credentials) -> None:
    """Every test here runs with fake credentials and no ~/.aws files."""


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    # Small multipart sizes (5 MiB is S3's minimum part) so streamed writes really go multipart.
    transfer = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    return local_or_s3_store(
        request, tmp_path, prefix="factory/v1", list_page_size=100, transfer_config=transfer
    )


def payload(size: int) -> bytes:
    return os.urandom(1024) * (size // 1024) + os.urandom(size % 1024)


def test_put_and_get_round_trip(store: ObjectStore) -> None:
    store.put_bytes("faces/female/adult/a.png", b"\x89PNG fake", content_type="image/png")
    assert store.get_bytes("faces/female/adult/a.png") == b"\x89PNG fake"
    store.put_bytes("faces/female/adult/a.png", b"replaced")
    assert store.get_bytes("faces/female/adult/a.png") == b"replaced"
    assert store.size("faces/female/adult/a.png") == len(b"replaced")
    with store.open_reader("faces/female/adult/a.png") as reader:
        assert reader.read(3) == b"rep"
        assert reader.read() == b"laced"


def test_put_file_streams_a_large_file(store: ObjectStore, tmp_path: Path) -> None:
    data = payload(6 * MB + 123)
    source = tmp_path / "archive.zip"
    source.write_bytes(data)
    store.put_file("datasets/req-1/archive.zip", source, content_type="application/zip")
    assert store.size("datasets/req-1/archive.zip") == len(data)
    with store.open_reader("datasets/req-1/archive.zip") as reader:
        assert b"".join(iter(lambda: reader.read(MB), b"")) == data


def test_open_writer_streams_in_chunks(store: ObjectStore) -> None:
    chunks = [payload(MB) for _ in range(6)]
    with store.open_writer("datasets/req-2/archive.tar", content_type="application/x-tar") as out:
        for chunk in chunks:
            out.write(chunk)
        # Nothing is visible under the key until the writer commits.
        assert not store.exists("datasets/req-2/archive.tar")
    assert store.get_bytes("datasets/req-2/archive.tar") == b"".join(chunks)


def test_failed_write_leaves_no_object(store: ObjectStore) -> None:
    with (
        pytest.raises(RuntimeError, match="packaging failed"),
        store.open_writer("datasets/req-3/archive.zip") as out,
    ):
        out.write(payload(MB))
        raise RuntimeError("packaging failed")
    assert not store.exists("datasets/req-3/archive.zip")
    assert list(store.list_keys()) == []
    if isinstance(store, LocalObjectStore):  # no temp file left behind either
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_failed_overwrite_keeps_the_previous_object(store: ObjectStore) -> None:
    store.put_bytes("manifest.json", b'{"v": 1}')
    with pytest.raises(RuntimeError), store.open_writer("manifest.json") as out:
        out.write(b'{"v": 2, "trunc')
        raise RuntimeError("crash mid-write")
    assert store.get_bytes("manifest.json") == b'{"v": 1}'


def test_exists_delete_and_list_with_prefix(store: ObjectStore) -> None:
    keys = ["faces/female/adult/1.png", "faces/female/child/2.png", "faces/male/adult/3.png"]
    for key in keys:
        store.put_bytes(key, b"x")
    store.put_bytes("facesheet.csv", b"y")

    assert all(store.exists(key) for key in keys)
    assert not store.exists("faces/female")  # a "folder" is not an object
    assert list(store.list_keys()) == sorted([*keys, "facesheet.csv"])
    assert list(store.list_keys("faces/")) == keys
    assert list(store.list_keys("faces")) == sorted([*keys, "facesheet.csv"])
    assert list(store.list_keys("faces/female/")) == keys[:2]
    assert list(store.list_keys("faces/female/a")) == keys[:1]
    assert list(store.list_keys("nothing/here")) == []

    store.delete("faces/male/adult/3.png")
    store.delete("faces/male/adult/3.png")  # deleting a missing key is fine
    store.delete("faces/female")  # so is a "folder" of keys, which deletes nothing
    assert list(store.list_keys("faces/female/")) == keys[:2]
    assert not store.exists("faces/male/adult/3.png")
    store.delete_many(["faces/female/adult/1.png", "never/existed.png"])
    assert list(store.list_keys("faces/")) == ["faces/female/child/2.png"]


def test_list_and_delete_many_past_one_page(store: ObjectStore) -> None:
    # The S3 store lists 100 keys a page, so 250 keys take three pages.
    keys = [f"tiny/{i:04d}" for i in range(250)]
    for key in keys:
        store.put_bytes(key, b"")
    assert list(store.list_keys("tiny/")) == keys
    store.delete_many(keys)
    assert list(store.list_keys()) == []


def test_missing_key_names_the_key(store: ObjectStore) -> None:
    key = "faces/female/adult/missing.png"
    for read in (store.get_bytes, store.size):
        with pytest.raises(ObjectNotFoundError, match=r"missing\.png") as excinfo:
            read(key)
        assert store.describe() in str(excinfo.value)
    with pytest.raises(ObjectNotFoundError, match=r"missing\.png"), store.open_reader(key):
        pass
    assert not store.exists(key)


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../escape", "a/../../b", "a\\b", "a//b", "a/./b", "trailing/"]
)
def test_invalid_keys_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInputError):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidInputError):
        store.get_bytes(key)
    with pytest.raises(InvalidInputError):
        store.exists(key)


def test_invalid_list_prefix_is_rejected(store: ObjectStore) -> None:
    with pytest.raises(InvalidInputError):
        store.list_keys("../")


def test_url_reads_the_object(store: ObjectStore) -> None:
    store.put_bytes("datasets/req-4/archive.zip", b"zip bytes")
    url = store.url("datasets/req-4/archive.zip", expires_in=600)
    if isinstance(store, LocalObjectStore):
        assert url.startswith("file://")
        assert Path(urllib.request.url2pathname(url.removeprefix("file://"))).is_file()
    else:
        # SigV4, not botocore's legacy SigV2 presign default, which R2 rejects.
        assert url.startswith("http://127.0.0.1:") and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"zip bytes"


def test_check_passes_on_a_usable_store(store: ObjectStore) -> None:
    store.check()
    assert store.describe()


def test_local_check_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match=str(blocker)):
        LocalObjectStore(blocker / "objects").check()


def test_s3_check_on_unreachable_endpoint_fails_fast() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3ObjectStore("some-bucket", endpoint_url=endpoint, region_name=REGION)
    started = time.monotonic()
    with pytest.raises(StorageError, match="not reachable") as excinfo:
        store.check()
    assert time.monotonic() - started < 10
    assert endpoint in str(excinfo.value) and "some-bucket" in str(excinfo.value)


def test_s3_check_on_missing_bucket_names_the_bucket(moto_endpoint: str) -> None:
    store = S3ObjectStore("no-such-bucket-here", endpoint_url=moto_endpoint, region_name=REGION)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        store.check()
    with pytest.raises(StorageError, match="no-such-bucket-here"):
        store.put_bytes("a", b"x")


def test_s3_prefix_keeps_keys_inside_it(moto_endpoint: str) -> None:
    bucket = make_bucket(moto_endpoint)
    store = S3ObjectStore(bucket, prefix="/factory/", endpoint_url=moto_endpoint)
    store.put_bytes("faces/1.png", b"x")
    raw = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    listed = raw.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["factory/faces/1.png"]
    assert list(store.list_keys()) == ["faces/1.png"]
    assert store.describe() == f"s3://{bucket}/factory @ {moto_endpoint}"


def test_resource_builds_a_local_store(tmp_path: Path) -> None:
    resource = ObjectStoreResource(backend="local", root=str(tmp_path / "objects"))
    store = resource.get_store()
    assert isinstance(store, LocalObjectStore)
    assert store is resource.get_store()
    store.put_bytes("a/b.txt", b"hello")
    assert (tmp_path / "objects" / "a" / "b.txt").read_bytes() == b"hello"


def test_resource_builds_an_s3_store_on_the_core_client(moto_endpoint: str) -> None:
    bucket = make_bucket(moto_endpoint)
    resource = ObjectStoreResource(
        backend="s3", bucket=bucket, prefix="p", endpoint_url=moto_endpoint, region_name=REGION
    )
    store = resource.get_store()
    assert isinstance(store, S3ObjectStore)
    store.check()
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in store.url("k.txt")
    store.put_bytes("k.txt", b"via the resource")
    assert store.get_bytes("k.txt") == b"via the resource"
    assert store.describe() == f"s3://{bucket}/p @ {moto_endpoint}"


def test_resource_works_inside_a_dagster_run(tmp_path: Path) -> None:
    @dg.asset
    def written(object_store: ObjectStoreResource) -> dg.MaterializeResult:
        object_store.get_store().put_bytes("from-asset.txt", b"ok")
        return dg.MaterializeResult(metadata={"store": object_store.get_store().describe()})

    result = dg.materialize(
        [written],
        resources={"object_store": ObjectStoreResource(root=str(tmp_path / "objects"))},
    )
    assert result.success
    assert (tmp_path / "objects" / "from-asset.txt").read_bytes() == b"ok"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"backend": "gcs"}, "backend 'gcs' is not one of: local, s3"),
        ({"backend": "local"}, "needs root"),
        ({"backend": "s3"}, "needs bucket"),
    ],
)
def test_resource_misconfiguration_is_explained(config: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ObjectStoreResource(**config).get_store()


def test_resource_misconfiguration_fails_the_run_at_start() -> None:
    @dg.asset
    def never_runs(object_store: ObjectStoreResource) -> None:
        raise AssertionError("the asset body should not run")

    resources = {"object_store": ObjectStoreResource(backend="x")}
    with pytest.raises(dg.DagsterResourceFunctionError) as excinfo:
        dg.materialize([never_runs], resources=resources)
    assert isinstance(excinfo.value.__cause__, InvalidInputError)
    assert "not one of: local, s3" in str(excinfo.value.__cause__)
