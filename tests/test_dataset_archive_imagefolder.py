"""A face dataset archive, packaged by the code path the `dataset_package` asset runs
(`package_request` -> `write_dataset_archive`) from simulator faces in the inventory, loads
with the readers its dataset card names: unzipped, Hugging Face `imagefolder` with the labels as
columns; untarred, the WebDataset shards with `webdataset` and with `datasets`."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from synth_pipelines.core.delivery.archive import CLASSES
from synth_pipelines.core.delivery.packaging import Ready, package_request
from synth_pipelines.core.faces.inventory import insert_faces
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from tests.helpers import request as new_request
from tests.test_factory_db import face_row

SIZE = 64
BUCKETS = {"female/adult": 3, "male/child": 2, "female/senior": 2, "male/young_adult": 1}
LABELS = ("id", "gender", "age_group", "seed", "generator", "classifier", "face_detected",
          "predicted_gender", "gender_confidence", "predicted_age", "age_confidence")  # fmt: skip


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: this module is about the archive, which is the same on either database."""
    return f"sqlite:///{tmp_path / 'factory.db'}"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[tuple[int, bytes]]]:
    """(seed, PNG bytes) of simulator faces, per bucket."""
    simulator = ProceduralFaceSimulator(size=SIZE)
    faces: dict[str, list[tuple[int, bytes]]] = {}
    for bucket, n in BUCKETS.items():
        for face in simulator.generate(bucket, n, seed=11):
            buffer = io.BytesIO()
            face.image.save(buffer, format="PNG", compress_level=1)
            faces.setdefault(bucket, []).append((face.seed, buffer.getvalue()))
    return faces


def packaged(factory_db, store, rendered, tmp_path: Path, fmt: str) -> tuple[Path, dict]:
    """Stock the inventory with the rendered faces, package a request for all of them in `fmt`;
    the downloaded archive and its manifest."""
    rows, n = [], 0
    for bucket, faces in rendered.items():
        gender, age_group = bucket.split("/")
        for seed, png in faces:
            row = face_row(n, gender, age_group)
            row |= {"sha256": hashlib.sha256(png).hexdigest(), "width": SIZE, "height": SIZE}
            row |= {"seed": seed, "generator": ProceduralFaceSimulator.name}
            store.put_bytes(row["object_key"], png, content_type="image/png")
            rows.append(row)
            n += 1
    insert_faces(factory_db, rows, phash_distance=4)
    request_id = new_request(factory_db, BUCKETS, format=fmt, image_size=SIZE)
    outcome = package_request(
        factory_db, store, request_id, "run-1", lease_seconds=600, ttl_seconds=3600
    )
    assert isinstance(outcome, Ready)
    path = tmp_path / Path(outcome.archive.key).name
    path.write_bytes(store.get_bytes(outcome.archive.key))
    return path, outcome.archive.manifest


def test_an_unzipped_archive_loads_as_imagefolder_with_the_labels_as_columns(
    factory_db, store, rendered, tmp_path
) -> None:
    import datasets

    archive, manifest = packaged(factory_db, store, rendered, tmp_path, "zip")
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(folder)
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(folder), cache_dir=str(tmp_path / "hf")
    )
    assert list(loaded) == ["train"]
    ds = loaded["train"]
    assert set(LABELS) <= set(ds.column_names) and "image" in ds.column_names
    assert ds.num_rows == sum(BUCKETS.values())
    assert Counter(f"{g}/{a}" for g, a in zip(ds["gender"], ds["age_group"], strict=True)) == (
        Counter(BUCKETS)
    )
    assert dict(zip(ds["id"], ds["seed"], strict=True)) == manifest["seeds"]
    for row in ds:
        assert row["image"].size == (SIZE, SIZE)
        assert row["generator"] == ProceduralFaceSimulator.name and row["face_detected"] is True
    # Each row's labels belong to the image it names: its path is images/<gender>/<age_group>.
    paths = ds.cast_column("image", datasets.Image(decode=False))
    for row in paths:
        assert row["image"]["path"].endswith(f"images/{row['gender']}/{row['age_group']}/"
                                             f"{row['id']}.png")  # fmt: skip


def test_an_untarred_webdataset_archive_loads_with_webdataset_and_datasets(
    factory_db, store, rendered, tmp_path
) -> None:
    import datasets
    import webdataset as wds

    archive, manifest = packaged(factory_db, store, rendered, tmp_path, "webdataset")
    folder = tmp_path / "untarred"
    with tarfile.open(archive) as bundle:
        bundle.extractall(folder, filter="data")
    shards = sorted(str(p) for p in (folder / "shards").glob("shard-*.tar"))
    assert shards and manifest["classes"] == list(CLASSES)
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil"))
    assert len(samples) == sum(BUCKETS.values())
    for sample in samples:
        labels = sample["json"]
        assert CLASSES[sample["cls"]] == f"{labels['gender']}/{labels['age_group']}"
        assert sample["png"].size == (SIZE, SIZE) and sample["__key__"] == labels["id"]
    ds = datasets.load_dataset(
        "webdataset",
        data_files=shards,
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert ds.num_rows == len(samples)
    row = ds[0]
    assert row["png"].size == (SIZE, SIZE)
    assert row["json"]["gender"] in ("female", "male")
