"""Image set exports, each read back by its own ecosystem's reader: Hugging Face `datasets`
(imagefolder, parquet), `webdataset`, `pycocotools`, and JSONL with `json` + Pillow; to a local
directory and to moto's S3 server (downloaded, then read the same way). EXIF/GPS is gone from
every exported image, pixels are kept, and a failed export publishes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, PngImagePlugin

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.imagesets.export import (
    FORMATS,
    MANIFEST,
    SUCCESS,
    export_set,
    strip_image_metadata,
)
from synth_pipelines.core.imagesets.records import ImageRecord
from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore
from tests.helpers import local_or_s3_store

COUNT = 30
WIDTH, HEIGHT = 64, 48  # not square, so a swapped width and height shows
GPS_IFD, ORIENTATION = 0x8825, 0x0112
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>52,31N</exif:GPSLatitude></x:xmpmeta>'


def _exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)
    if orientation is not None:
        exif[ORIENTATION] = orientation
    return exif


def _picture(i: int) -> Image.Image:
    """A picture with structure (a gradient and a block), different for each i."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([(x * 4 + i * 7) % 256, (y * 5) % 256, np.full_like(x, i * 8 % 256)], -1)
    pixels[10:30, 8:30] = (255 - i * 5, 20, 200)
    return Image.fromarray(pixels.astype(np.uint8))


def make_record(i: int) -> ImageRecord:
    """Every third image a JPEG with EXIF GPS (and XMP), every third a PNG (with eXIf and text
    chunks on the even ones), the rest plain JPEGs; labels cat/dog; face boxes on every fourth."""
    label = "cat" if i % 2 else "dog"
    buffer = io.BytesIO()
    if i % 3 == 2:
        info = PngImagePlugin.PngInfo()
        if i % 2 == 0:
            info.add_text("Comment", "taken at 52.52N 13.40E")
            _picture(i).save(buffer, format="PNG", pnginfo=info, exif=_exif())
        else:
            _picture(i).save(buffer, format="PNG")
        name = f"{label}/img_{i:03d}.png"
        if i % 10 == 5:  # split words in a key must not split an imagefolder export
            name = f"test/val_{i:03d}.png"
    else:
        options = {"exif": _exif(), "xmp": XMP} if i % 3 == 0 else {}
        _picture(i).save(buffer, format="JPEG", quality=90, **options)
        name = f"{label}/img_{i:03d}.jpg"
    boxes = ((4 + i % 5, 6, 20, 24),) if i % 4 == 0 else ()
    if i == 8:
        boxes = ((2, 2, 10, 10), (30, 20, 30, 25))
    metadata = {"seed": 1000 + i, "backend": "scenes", "psi": 0.7}
    return ImageRecord(name, buffer.getvalue(), label, metadata, boxes)


@pytest.fixture(scope="module")
def records() -> list[ImageRecord]:
    return [make_record(i) for i in range(COUNT)]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return local_or_s3_store(request, tmp_path)


def local_copy(store: ObjectStore, prefix: str, tmp_path: Path) -> Path:
    """The export as a local folder: the published directory itself on a local store, a
    download of every key under the prefix on S3."""
    if isinstance(store, LocalObjectStore):
        return store.root / prefix
    target = tmp_path / "download" / prefix
    for key in store.list_keys(f"{prefix}/"):
        path = target / key[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get_bytes(key))
    return target


def assert_clean(data: bytes, name: str) -> Image.Image:
    """`data` decodes and carries no EXIF, GPS, XMP or text chunk; the decoded image."""
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), f"{name} still has EXIF"
        assert not image.getexif().get_ifd(GPS_IFD), f"{name} still has GPS"
        assert not {"exif", "xmp", "XML:com.adobe.xmp", "Comment"} & set(image.info), name
        assert b"GPS" not in data and b"PhoneMaker" not in data and b"52.52N" not in data
        image.load()
        return image.copy()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def verify_manifest(root: Path, fmt: str, count: int = COUNT) -> dict:
    """manifest.json's sha256 and size for every file, and no file it does not list."""
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["format"] == fmt and manifest["counts"]["images"] == count
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {
        MANIFEST,
        SUCCESS,
    }
    assert on_disk == set(manifest["files"])
    for name, entry in manifest["files"].items():
        data = (root / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert (root / SUCCESS).exists()
    return manifest


def by_seed(records: list[ImageRecord]) -> dict[int, ImageRecord]:
    return {r.metadata["seed"]: r for r in records}


def test_jsonl_reads_back_with_json_and_pillow(records, store, tmp_path) -> None:
    done: list[int] = []
    result = export_set(records, store, "exports/jsonl", "jsonl", progress=done.append)
    assert done == list(range(1, COUNT + 1))
    assert result.images == COUNT and result.keys_written == COUNT + 3
    assert result.manifest_key == "exports/jsonl/manifest.json"
    root = local_copy(store, "exports/jsonl", tmp_path)
    verify_manifest(root, "jsonl")
    rows = [json.loads(line) for line in (root / "data.jsonl").read_text().splitlines()]
    assert len(rows) == COUNT
    source = by_seed(records)
    for row in rows:
        record = source[row["seed"]]
        assert row["file_name"] == f"images/{record.key}"
        assert row["label"] == record.label and row["backend"] == "scenes"
        assert row["boxes"] == [list(b) for b in record.boxes]
        data = (root / row["file_name"]).read_bytes()
        image = assert_clean(data, row["file_name"])
        assert image.size == (row["width"], row["height"]) == (WIDTH, HEIGHT)
        assert np.array_equal(pixels(data), pixels(record.data)), "stripping changed pixels"


def test_parquet_reads_back_with_pyarrow_and_datasets(records, store, tmp_path) -> None:
    import datasets

    export_set(records, store, "exports/pq", "parquet", shard_size=12, row_group_size=5)
    root = local_copy(store, "exports/pq", tmp_path)
    manifest = verify_manifest(root, "parquet")
    files = sorted(root.glob("data-*.parquet"))
    names = [f"data-{n:05d}.parquet" for n in range(3)]
    assert [f.name for f in files] == names == sorted(manifest["files"])
    metadata = [pq.ParquetFile(f).metadata for f in files]
    groups = [[m.row_group(g).num_rows for g in range(m.num_row_groups)] for m in metadata]
    assert groups == [[5, 5, 2], [5, 5, 2], [5, 1]]
    table = pq.read_table([str(f) for f in files])
    assert table.num_rows == COUNT
    assert table.column_names == ["image", "label", "metadata", "width", "height"]
    source = by_seed(records)
    for row in table.to_pylist():
        record = source[json.loads(row["metadata"])["seed"]]
        assert row["image"]["path"] == record.key and row["label"] == record.label
        assert (row["width"], row["height"]) == (WIDTH, HEIGHT)
        assert_clean(row["image"]["bytes"], record.key)

    ds = datasets.load_dataset(
        "parquet",
        data_files=str(root / "data-*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert isinstance(ds.features["image"], datasets.Image) and ds.num_rows == COUNT
    first = ds[0]
    assert isinstance(first["image"], Image.Image) and first["image"].size == (WIDTH, HEIGHT)
    assert Counter(ds["label"]) == Counter(r.label for r in records)


def test_webdataset_reads_back_with_webdataset(records, store, tmp_path) -> None:
    import webdataset as wds

    export_set(records, store, "exports/wds", "webdataset", shard_size=8)
    root = local_copy(store, "exports/wds", tmp_path)
    manifest = verify_manifest(root, "webdataset")
    urls = [str(p) for p in sorted(root.glob("shard-*.tar"))]
    assert len(urls) == manifest["shards"] == 4
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil"))
    assert len(samples) == COUNT
    source = {r.key: r for r in records}
    for sample in samples:
        meta = sample["json"]
        record = source[meta["key"]]
        image = sample["jpg"] if "jpg" in sample else sample["png"]
        assert isinstance(image, Image.Image) and image.size == (WIDTH, HEIGHT)
        assert manifest["classes"][sample["cls"]] == record.label == meta["label"]
        assert meta["metadata"]["seed"] == record.metadata["seed"]
        assert meta["boxes"] == [list(b) for b in record.boxes]
    raw = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    for sample in raw:
        assert "." not in sample["__key__"]
        assert_clean(sample["jpg"] if "jpg" in sample else sample["png"], sample["__key__"])


def test_webdataset_of_one_format_loads_with_datasets_unlabelled_as_minus_one(
    records, tmp_path
) -> None:
    import datasets

    jpegs = [r for r in records if r.key.endswith(".jpg")]
    jpegs = [dataclasses.replace(r, label=None) if i % 4 == 0 else r for i, r in enumerate(jpegs)]
    store = LocalObjectStore(tmp_path / "store")
    export_set(jpegs, store, "wds", "webdataset", shard_size=8)
    classes = json.loads(store.get_bytes(f"wds/{MANIFEST}"))["classes"]
    shards = sorted(str(p) for p in (store.root / "wds").glob("shard-*.tar"))
    ds = datasets.load_dataset(
        "webdataset", data_files=shards, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == len(jpegs) and isinstance(ds.features["jpg"], datasets.Image)
    labels = [None if c == -1 else classes[c] for c in ds["cls"]]
    assert labels == [r.label for r in jpegs] and None in labels
    assert ds[0]["jpg"].size == (WIDTH, HEIGHT)


def test_imagefolder_loads_with_datasets_labels_and_metadata_as_columns(
    records, store, tmp_path
) -> None:
    import datasets

    export_set(records, store, "exports/folder", "imagefolder")
    root = local_copy(store, "exports/folder", tmp_path)
    verify_manifest(root, "imagefolder")
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(root), cache_dir=str(tmp_path / "hf")
    )
    assert list(loaded) == ["train"]  # key names like "test__x" did not make a split
    ds = loaded["train"]
    assert ds.num_rows == COUNT
    assert {"image", "label", "seed", "backend", "psi", "width", "height", "objects"} <= set(
        ds.column_names
    )
    source = by_seed(records)
    for row in ds:
        record = source[row["seed"]]
        assert row["label"] == record.label and row["backend"] == "scenes"
        assert row["image"].size == (WIDTH, HEIGHT)
        assert [list(b) for b in record.boxes] == row["objects"]["bbox"]
    for path in (root / "train").rglob("*.*"):
        if path.suffix in (".jpg", ".png"):
            assert path.parent.name in ("cat", "dog")
            assert_clean(path.read_bytes(), path.name)


def test_coco_loads_with_pycocotools_and_the_boxes_match(records, store, tmp_path) -> None:
    from pycocotools.coco import COCO

    export_set(records, store, "exports/coco", "coco")
    root = local_copy(store, "exports/coco", tmp_path)
    verify_manifest(root, "coco")
    coco = COCO(str(root / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["face"]
    assert len(coco.getImgIds()) == COUNT
    source = {r.key: r for r in records}
    total_boxes = 0
    for info in coco.loadImgs(coco.getImgIds()):
        record = source[info["file_name"]]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[info["id"]]))
        assert [a["bbox"] for a in annotations] == [list(b) for b in record.boxes]
        assert all(a["area"] == a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0
                   for a in annotations)  # fmt: skip
        total_boxes += len(annotations)
        image = assert_clean((root / "images" / info["file_name"]).read_bytes(), info["file_name"])
        assert image.size == (info["width"], info["height"])
    assert total_boxes == sum(len(r.boxes) for r in records) == len(coco.getAnnIds())


def failing(records: list[ImageRecord], after: int) -> Iterator[ImageRecord]:
    yield from records[:after]
    raise RuntimeError("the source went away")


def test_a_failing_record_iterator_publishes_nothing(records, store) -> None:
    for fmt in FORMATS:
        with pytest.raises(RuntimeError, match="went away"):
            export_set(failing(records, 17), store, "exports/broken", fmt, shard_size=5)
        # No manifest, no _SUCCESS, no readable file at the prefix, no staging left beside it.
        assert list(store.list_keys("exports/broken")) == [], fmt
        assert not store.exists(f"exports/broken/{SUCCESS}")


def test_a_failed_overwrite_keeps_the_previous_export(records, store) -> None:
    export_set(records[:5], store, "exports/x", "jsonl")
    before = sorted(store.list_keys("exports/x"))
    with pytest.raises(RuntimeError):
        export_set(failing(records, 9), store, "exports/x", "jsonl", overwrite=True)
    assert sorted(store.list_keys("exports/x")) == before


def test_a_copy_failing_mid_publish_on_s3_leaves_nothing_at_the_prefix(records, store) -> None:
    """The S3 publish copies the staged keys one by one; the connection drops on the fourth copy
    (botocore's own error, raised from its before-call hook): the copied keys are deleted again,
    no _SUCCESS or manifest appears, the staging is gone, and the export can be run again."""
    if isinstance(store, LocalObjectStore):
        pytest.skip("a local export is published by one directory rename")
    from botocore.exceptions import EndpointConnectionError

    from synth_pipelines.core.errors import StorageError

    copies = 0

    def drop_the_fourth_copy(**_: object) -> None:
        nonlocal copies
        copies += 1
        if copies == 4:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1/s3-went-away")

    events = store.client.meta.events
    events.register("before-call.s3.CopyObject", drop_the_fourth_copy)
    try:
        with pytest.raises(StorageError, match=r"cannot copy .*data-00003.*s3-went-away"):
            export_set(records, store, "exports/dropped", "parquet", shard_size=5)
    finally:
        events.unregister("before-call.s3.CopyObject", drop_the_fourth_copy)
    assert copies == 4
    assert list(store.list_keys("exports/")) == []  # neither the copies nor the staging
    result = export_set(records, store, "exports/dropped", "parquet", shard_size=5)
    assert result.images == COUNT and store.exists(f"exports/dropped/{SUCCESS}")


def test_an_existing_export_is_replaced_only_when_asked(records, store, tmp_path) -> None:
    export_set(records[:5], store, "exports/y", "parquet")
    with pytest.raises(InvalidInputError, match="overwrite=True"):
        export_set(records, store, "exports/y", "parquet")
    result = export_set(records[5:12], store, "exports/y", "parquet", overwrite=True)
    assert result.images == 7
    root = local_copy(store, "exports/y", tmp_path)
    assert verify_manifest(root, "parquet", count=7)["counts"]["images"] == 7
    assert [k for k in store.list_keys("exports/") if not k.startswith("exports/y/")] == []


def test_an_upright_copy_replaces_an_exif_rotation_and_its_boxes_turn(tmp_path) -> None:
    """EXIF orientation 6 (turn 90 degrees clockwise): the export is upright with no EXIF, its
    width and height swapped, and the box still frames the block it framed."""
    buffer = io.BytesIO()
    _picture(3).save(buffer, format="JPEG", quality=95, exif=_exif(orientation=6))
    record = ImageRecord("phone.jpg", buffer.getvalue(), "cat", {"seed": 1}, ((8, 10, 22, 20),))
    store = LocalObjectStore(tmp_path / "store")
    export_set([record], store, "up", "coco")
    annotations = json.loads(store.get_bytes("up/annotations.json"))
    exported = store.get_bytes("up/images/phone.jpg")
    image = assert_clean(exported, "phone.jpg")
    assert image.size == (HEIGHT, WIDTH)
    assert annotations["images"][0]["width"] == HEIGHT
    x, y, w, h = annotations["annotations"][0]["bbox"]
    assert (x, y, w, h) == (HEIGHT - 30, 8, 20, 22)
    block = pixels(exported)[y + 2 : y + h - 2, x + 2 : x + w - 2].reshape(-1, 3).mean(0)
    assert np.allclose(block, (240, 20, 200), atol=12)


def test_a_big_endian_exif_rotation_is_read_too(tmp_path) -> None:
    """Pillow writes little-endian EXIF; cameras also write big-endian ("MM")."""
    buffer = io.BytesIO()
    _picture(4).save(buffer, format="JPEG", quality=95)
    ifd = b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x08\x00\x00" + b"\x00" * 4
    payload = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + ifd
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    data = buffer.getvalue()[:2] + app1 + buffer.getvalue()[2:]
    assert Image.open(io.BytesIO(data)).getexif()[ORIENTATION] == 8
    store = LocalObjectStore(tmp_path / "store")
    export_set([ImageRecord("mm.jpg", data, None, {}, ((0, 0, 10, 5),))], store, "mm", "coco")
    annotations = json.loads(store.get_bytes("mm/annotations.json"))
    assert assert_clean(store.get_bytes("mm/images/mm.jpg"), "mm.jpg").size == (HEIGHT, WIDTH)
    # Orientation 8 (turn 90 degrees counter-clockwise): the top-left corner goes bottom-left.
    assert annotations["annotations"][0]["bbox"] == [0, WIDTH - 10, 5, 10]


def test_strip_image_metadata_is_lossless_and_a_no_op_on_clean_images() -> None:
    plain = make_record(1).data
    assert strip_image_metadata(plain) is plain
    tagged = make_record(0).data
    stripped = strip_image_metadata(tagged)
    assert len(stripped) < len(tagged) and tagged.endswith(stripped[-1000:])
    assert np.array_equal(pixels(stripped), pixels(tagged))
    assert_clean(stripped, "jpeg")
    png = make_record(2).data
    clean_png = strip_image_metadata(png)
    assert_clean(clean_png, "png") and np.array_equal(pixels(clean_png), pixels(png))
    keep = strip_image_metadata(make_record(5).data)  # a PNG with no text chunks
    assert keep == make_record(5).data
    assert Image.open(io.BytesIO(tagged)).getexif().get_ifd(GPS_IFD)  # the test is not vacuous
    # A phone's second image after the first one's end (its own EXIF with it) is dropped too.
    two = strip_image_metadata(tagged + make_record(3).data)
    assert two == stripped and b"PhoneMaker" not in two


def test_strip_exif_false_exports_the_bytes_as_stored(records, tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    export_set(records[:6], store, "raw", "jsonl", strip_exif=False)
    for record in records[:6]:
        assert store.get_bytes(f"raw/images/{record.key}") == record.data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fmt": "tfrecord"}, "is not one of"),
        ({"shard_size": 0}, "shard_size must be a positive integer"),
        ({"row_group_size": True}, "row_group_size must be"),
        ({"prefix": ""}, "needs a prefix"),
        ({"prefix": "a/../b"}, "'..'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    records, tmp_path, change, message
) -> None:
    store = LocalObjectStore(tmp_path / "store")
    arguments = {"prefix": "out", "fmt": "jsonl"} | change
    with pytest.raises(InvalidInputError, match=message):
        export_set(records, store, arguments.pop("prefix"), arguments.pop("fmt"), **arguments)
    assert list(store.list_keys()) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (ImageRecord("cat/img_001.jpg", b"x"), "appears twice"),
        (ImageRecord("broken.jpg", b"not an image"), "'broken.jpg' cannot be decoded"),
        (ImageRecord("big.png", make_record(5).data, boxes=((50, 40, 20, 20),)), "outside"),
        (ImageRecord("flat.png", make_record(5).data, boxes=((5, 5, 0, 3),)), "no area"),
        (ImageRecord("w.png", make_record(5).data, "cat", {"width": 10}), "'width'"),
    ],
)
def test_bad_records_stop_the_export_and_leave_nothing(records, tmp_path, bad, message) -> None:
    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(InvalidInputError, match=message):
        export_set([*records[:4], bad], store, "out", "jsonl")
    assert list(store.list_keys()) == []
