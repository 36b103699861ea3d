"""Image set sources: a folder, a zip, an S3 prefix (moto's server), a Parquet file of image
bytes (raw, Hugging Face structs, a record file, one written by `datasets`) and an imagefolder
with metadata.jsonl yield the same records for the same images; errors name the source."""

from __future__ import annotations

import io
import json
import socket
import zipfile
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError, StorageError
from synth_pipelines.core.imagesets.records import ImageRecord, write_records
from synth_pipelines.core.imagesets.sources import open_source
from tests.conftest import REGION, make_bucket

# Names chosen so that a walk in folder order would differ from the order of the full keys
# ("a.b/" sorts before "a/", "a-b.png" before both), and with an upper-case extension.
LAYOUT = {
    "a-b.png": None,
    "a.b/x.jpg": "a.b",
    "a/x.png": "a",
    "cat/001.jpg": "cat",
    "cat/002.JPG": "cat",
    "dog/001.webp": "dog",
    "train/dog/003.bmp": "dog",
    "zebra.gif": None,
}


def _encode(index: int, key: str) -> bytes:
    image = Image.new("RGB", (16 + index, 12), (20 * index, 255 - 20 * index, 90))
    fmt = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "gif": "GIF"}
    out = io.BytesIO()
    image.save(out, format=fmt[key.rsplit(".", 1)[1].lower()])
    return out.getvalue()


@pytest.fixture
def images() -> dict[str, bytes]:
    return {key: _encode(i, key) for i, key in enumerate(LAYOUT)}


def _expected(images: dict[str, bytes]) -> list[tuple[str, bytes, str | None]]:
    return [(key, images[key], LAYOUT[key]) for key in sorted(images)]


def _triples(source) -> list[tuple[str, bytes, str | None]]:
    return [(r.key, r.data, r.label) for r in source]


def _folder(root: Path, images: dict[str, bytes]) -> Path:
    for key, data in images.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    (root / "notes.txt").write_text("not an image")
    some = next(iter(images.values()))
    (root / ".hidden.png").write_bytes(some)
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(some)
    return root


@pytest.fixture
def s3(moto_endpoint: str, aws_credentials: None):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)


def test_every_kind_yields_the_same_records(tmp_path, images, s3, moto_endpoint) -> None:
    expected = _expected(images)
    folder = _folder(tmp_path / "folder", images)
    source = open_source(str(folder))
    assert source.kind == "folder" and str(folder) in source.describe()
    assert _triples(source) == expected

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for key in reversed(list(images)):  # member order is not the record order
            out.writestr(key, images[key])
        out.writestr("__MACOSX/._cat", b"resource fork")
        out.writestr("readme.md", "hello")
    source = open_source(str(archive))
    assert source.kind == "zip"
    assert _triples(source) == expected
    outer = iter(source)
    first = next(outer)
    assert [r.key for r in source.select(["zebra.gif"])] == ["zebra.gif"]  # while iterating
    assert [first.key] + [r.key for r in outer] == [k for k, _, _ in expected]

    bucket = make_bucket(moto_endpoint)
    for key, data in images.items():
        s3.put_object(Bucket=bucket, Key=f"sets/one/{key}", Body=data)
    s3.put_object(Bucket=bucket, Key="sets/one/notes.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="sets/other/cat/9.png", Body=images["a-b.png"])
    source = open_source(f"s3://{bucket}/sets/one", s3_client=s3)
    assert source.kind == "s3" and bucket in source.describe()
    assert _triples(source) == expected

    table = pa.table({
        "image": [{"bytes": images[k], "path": k} for k, _, _ in expected],
        "label": [label for _, _, label in expected],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "hf.parquet")
    source = open_source(str(tmp_path / "hf.parquet"))
    assert source.kind == "parquet"
    assert _triples(source) == expected

    raw = pa.table({
        "key": [k for k, _, _ in expected],
        "image": [d for _, d, _ in expected],
        "label": [label for _, _, label in expected],
        "seed": list(range(len(expected))),
    })  # fmt: skip
    pq.write_table(raw, tmp_path / "raw.parquet", row_group_size=3)
    records = list(open_source(str(tmp_path / "raw.parquet")))
    assert [(r.key, r.data, r.label) for r in records] == expected
    assert [r.metadata["seed"] for r in records] == list(range(len(expected)))

    as_records = [ImageRecord(k, d, label, {"i": i}) for i, (k, d, label) in enumerate(expected)]
    write_records(as_records, tmp_path / "records.parquet")
    assert list(open_source(str(tmp_path / "records.parquet"))) == as_records


def test_s3_endpoint_comes_from_the_environment(images, moto_endpoint, aws_credentials, s3,
                                                monkeypatch) -> None:  # fmt: skip
    bucket = make_bucket(moto_endpoint)
    s3.put_object(Bucket=bucket, Key="cat/1.png", Body=images["a-b.png"])
    monkeypatch.setenv("SYNTH_S3_ENDPOINT_URL", moto_endpoint)
    source = open_source(f"s3://{bucket}")
    assert [(r.key, r.label) for r in source] == [("cat/1.png", "cat")]
    assert moto_endpoint in source.describe()


def test_imagefolder_metadata_gives_labels_and_fields(tmp_path, images) -> None:
    root = tmp_path / "hf"
    (root / "train").mkdir(parents=True)
    (root / "one.png").write_bytes(images["a-b.png"])
    (root / "two.png").write_bytes(images["a/x.png"])
    (root / "train" / "three.jpg").write_bytes(images["cat/001.jpg"])
    rows = [
        {"file_name": "one.png", "label": "happy", "caption": "a square", "score": 0.5},
        {"file_name": "two.png", "caption": "no label here"},
    ]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (root / "train" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "three.jpg", "label": 3}) + "\n"
    )
    source = open_source(str(root))
    assert source.kind == "imagefolder"
    records = {r.key: r for r in source}
    assert set(records) == {"one.png", "two.png", "train/three.jpg"}
    assert records["one.png"].label == "happy"
    assert records["one.png"].metadata == {"caption": "a square", "score": 0.5}
    assert records["two.png"].label is None
    assert records["two.png"].metadata == {"caption": "no label here"}
    assert records["train/three.jpg"].label == "3"  # its metadata, not its folder "train"

    (root / "metadata.jsonl").write_text('{"file_name": "one.png"}\nnot json\n')
    with pytest.raises(InvalidInputError, match=r"metadata.jsonl line 2 is not JSON"):
        list(open_source(str(root)))


def test_a_hugging_face_parquet_with_class_labels(tmp_path, images) -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])}
    )
    keys = ["cat/001.jpg", "dog/001.webp", "cat/002.JPG"]
    folder = _folder(tmp_path / "folder", {k: images[k] for k in keys})
    embedded = datasets.Dataset.from_dict(
        {"image": [{"bytes": images[k], "path": k} for k in keys], "label": [0, 1, 0]},
        features=features,
    )
    embedded.to_parquet(str(tmp_path / "train.parquet"))
    records = list(open_source(str(tmp_path / "train.parquet")))
    assert [(r.key, r.data, r.label) for r in records] == [
        (k, images[k], label) for k, label in zip(keys, ["cat", "dog", "cat"], strict=True)
    ]
    # Built from local files, a dataset keeps only their paths: they are read from disk.
    by_path = datasets.Dataset.from_dict(
        {"image": [str(folder / k) for k in keys], "label": [1, 1, 0]}, features=features
    )
    by_path.to_parquet(str(tmp_path / "paths.parquet"))
    records = list(open_source(str(tmp_path / "paths.parquet")))
    assert [(r.data, r.label) for r in records] == [
        (images[k], label) for k, label in zip(keys, ["dog", "dog", "cat"], strict=True)
    ]
    (folder / keys[1]).unlink()
    with pytest.raises(InvalidInputError, match=r"paths.parquet row 1 has no image bytes and"):
        list(open_source(str(tmp_path / "paths.parquet")))


def test_a_parquet_of_unnamed_bytes_gets_index_keys(tmp_path, images) -> None:
    pq.write_table(pa.table({"pixels": [images["a-b.png"], images["cat/001.jpg"]]}),
                   tmp_path / "bytes.parquet")  # fmt: skip
    records = list(open_source(str(tmp_path / "bytes.parquet")))
    assert [r.key for r in records] == ["00000000.png", "00000001.jpg"]
    pq.write_table(pa.table({"name": ["x"]}), tmp_path / "text.parquet")
    with pytest.raises(InvalidInputError, match=r"text.parquet has no image column"):
        open_source(str(tmp_path / "text.parquet"))


def test_select_reads_only_the_keys_asked_for(tmp_path, images) -> None:
    source = open_source(str(_folder(tmp_path / "folder", images)))
    chosen = [r.key for r in source.select(["dog/001.webp", "a/x.png", "missing.png"])]
    assert chosen == ["a/x.png", "dog/001.webp"]


def test_sources_without_images_are_named(tmp_path, s3, moto_endpoint) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("x")
    with pytest.raises(InvalidInputError, match=rf"folder {empty} holds no images"):
        open_source(str(empty))
    with zipfile.ZipFile(tmp_path / "text.zip", "w") as out:
        out.writestr("a/readme.txt", "x")
    with pytest.raises(InvalidInputError, match=r"zip .*text.zip holds no images"):
        open_source(str(tmp_path / "text.zip"))
    pq.write_table(pa.table({"image": pa.array([], pa.binary())}), tmp_path / "none.parquet")
    with pytest.raises(InvalidInputError, match=r"none.parquet holds no images"):
        open_source(str(tmp_path / "none.parquet"))
    bucket = make_bucket(moto_endpoint)
    s3.put_object(Bucket=bucket, Key="set/readme.txt", Body=b"x")
    with pytest.raises(InvalidInputError, match=rf"s3://{bucket}/set/ .*holds no images"):
        open_source(f"s3://{bucket}/set", s3_client=s3)


def test_missing_paths_and_buckets_are_named(tmp_path, s3, moto_endpoint) -> None:
    with pytest.raises(InvalidInputError, match=rf"image source {tmp_path}/nope does not exist"):
        open_source(str(tmp_path / "nope"))
    (tmp_path / "set.tar").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"set.tar is not a folder, a .zip or a .parquet"):
        open_source(str(tmp_path / "set.tar"))
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(InvalidInputError, match=r"bad.zip is not a readable zip archive"):
        open_source(str(tmp_path / "bad.zip"))
    with pytest.raises(StorageError, match=r"S3 bucket 'no-such-bucket' does not exist at http"):
        open_source("s3://no-such-bucket/images", s3_client=s3)
    with pytest.raises(InvalidInputError, match=r"names no bucket"):
        open_source("s3:///images", s3_client=s3)


def test_an_unreachable_endpoint_is_one_clear_error(aws_credentials, monkeypatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SYNTH_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError, match=r"cannot reach s3://photos/set/ at http://127.0.0.1"):
        open_source("s3://photos/set")
