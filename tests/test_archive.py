"""Dataset archives built from real simulator faces in a real object store (a local directory and
moto's S3 server): zip and WebDataset layouts, resizing, and integrity checks both ways."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tarfile
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from PIL import Image

from synth_pipelines.core.delivery.archive import (
    CLASSES,
    LABEL_COLUMNS,
    ArchiveFace,
    ArchiveResult,
    write_dataset_archive,
)
from synth_pipelines.core.delivery.verify import verify_archive
from synth_pipelines.core.errors import (
    ArchiveIntegrityError,
    InvalidInputError,
    ObjectNotFoundError,
)
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore
from synth_pipelines.core.storage.s3_object_store import S3ObjectStore
from tests.conftest import REGION, make_bucket

BUCKETS = {"female/adult": 5, "male/child": 4, "female/senior": 3}
SIZE = 128
SPEC = {"buckets": BUCKETS, "format": "zip", "image_size": SIZE, "exclusive": True}
ARCHIVE_KEY = "datasets/req1/synth-faces-req1.zip"


@pytest.fixture(scope="module")
def rendered() -> list[tuple[str, int, bytes, dict]]:
    """(bucket, seed, PNG bytes, attributes) for 12 simulator faces in 3 buckets."""
    simulator = ProceduralFaceSimulator(size=SIZE)
    faces = []
    for bucket, n in BUCKETS.items():
        for face in simulator.generate(bucket, n, seed=7):
            buffer = io.BytesIO()
            face.image.save(buffer, format="PNG", compress_level=1)
            faces.append((bucket, face.seed, buffer.getvalue(), face.attributes))
    return faces


def put_faces(
    store: ObjectStore, rendered: list[tuple[str, int, bytes, dict]]
) -> list[ArchiveFace]:
    """Store each PNG as the factory does and return the records a request would package."""
    faces = []
    for bucket, seed, png, attributes in rendered:
        digest = hashlib.sha256(png).hexdigest()
        key = f"faces/{bucket}/{digest}.png"
        store.put_bytes(key, png, content_type="image/png")
        gender, age_group = bucket.split("/")
        faces.append(
            ArchiveFace(
                id=uuid.uuid4().hex,
                gender=gender,
                age_group=age_group,
                object_key=key,
                sha256=digest,
                width=SIZE,
                height=SIZE,
                generator=ProceduralFaceSimulator.name,
                seed=seed,
                classifier="test-classifier",
                face_detected=True,
                predicted_gender=gender,
                predicted_age=float(attributes["age"]),
                gender_confidence=0.97,
                age_confidence=None,
                attributes=attributes,
            )
        )
    return faces


@pytest.fixture
def faces(store: LocalObjectStore, rendered) -> list[ArchiveFace]:
    return put_faces(store, rendered)


def package(store: ObjectStore, faces: list[ArchiveFace], key: str = ARCHIVE_KEY, **kwargs):
    return write_dataset_archive(store, key, faces, request_id="req1", spec=SPEC, **kwargs)


def download(store: ObjectStore, result: ArchiveResult, tmp_path: Path) -> Path:
    path = tmp_path / Path(result.key).name
    path.write_bytes(store.get_bytes(result.key))
    assert path.stat().st_size == result.bytes
    return path


def leftovers(store: LocalObjectStore) -> list[str]:
    """Every file under datasets/ on disk, half-written ones included."""
    root = store.root / "datasets"
    return [str(Path(d, f)) for d, _, files in os.walk(root) for f in files]


def test_zip_holds_stored_images_labels_card_and_a_manifest_that_verifies(
    store, faces, rendered, tmp_path
) -> None:
    result = package(store, faces)
    archive = download(store, result, tmp_path)

    manifest = verify_archive(archive)
    assert manifest == json.loads(json.dumps(result.manifest))
    assert result.faces_per_bucket == dict(sorted(BUCKETS.items()))
    assert manifest["counts"] == dict(sorted(BUCKETS.items())) | {"total": 12}
    assert manifest["seeds"] == {face.id: face.seed for face in faces}
    assert manifest["generators"] == [ProceduralFaceSimulator.name]
    assert manifest["classifiers"] == ["test-classifier"]
    assert (manifest["spec"], manifest["image_size"], manifest["format"]) == (SPEC, SIZE, "zip")

    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        assert result.files == len(names) == 12 + 4
        assert set(manifest["files"]) == set(names) - {"manifest.json"}
        stored = {face.id: png for face, (_, _, png, _) in zip(faces, rendered, strict=True)}
        for face in faces:
            info = bundle.getinfo(f"images/{face.gender}/{face.age_group}/{face.id}.png")
            assert info.compress_type == zipfile.ZIP_STORED
            # Sizes and CRC sit in the local header (no data descriptor): streaming readers
            # such as Java's ZipInputStream cannot read stored entries otherwise.
            assert not info.flag_bits & 0x08
            assert bundle.read(info) == stored[face.id]
        metadata = [json.loads(line) for line in bundle.read("metadata.jsonl").splitlines()]
        labels = list(csv.DictReader(io.StringIO(bundle.read("labels.csv").decode())))
        readme = bundle.read("README.md").decode()

    by_id = {face.id: face for face in faces}
    assert len(metadata) == 12
    for row in metadata:
        face = by_id[row["id"]]
        assert row["file_name"] in names
        assert (row["gender"], row["age_group"], row["seed"]) == (
            face.gender,
            face.age_group,
            face.seed,
        )
        assert row["predicted_age"] == face.predicted_age
        assert row["age_confidence"] is None
    assert len(labels) == 12
    assert tuple(labels[0]) == LABEL_COLUMNS
    assert [row["file_name"] for row in labels] == [row["file_name"] for row in metadata]
    for bucket, n in BUCKETS.items():
        assert f"| {bucket} | {n} |" in readme
    assert "**12**" in readme
    assert 'load_dataset("imagefolder"' in readme
    assert "manifest.json" in readme and "License" in readme


def test_webdataset_writes_capped_shards_of_png_json_cls_samples(store, faces, tmp_path) -> None:
    key = "datasets/req1/synth-faces-req1.tar"
    result = package(store, faces, key=key, fmt="webdataset", shard_size=5)
    archive = download(store, result, tmp_path)

    manifest = verify_archive(archive)
    shards = [f"shards/shard-{i:06d}.tar" for i in range(3)]
    assert sorted(manifest["files"]) == sorted([*shards, "labels.csv", "README.md"])
    assert manifest["classes"] == list(CLASSES)
    assert result.files == 6

    buckets: Counter[str] = Counter()
    with tarfile.open(archive) as outer:
        assert outer.getnames() == [*shards, "labels.csv", "README.md", "manifest.json"]
        labels = list(csv.DictReader(io.StringIO(outer.extractfile("labels.csv").read().decode())))
        readme = outer.extractfile("README.md").read().decode()
        sizes = []
        for name in shards:
            with tarfile.open(fileobj=outer.extractfile(name)) as shard:
                members = {m.name: shard.extractfile(m).read() for m in shard}
            keys = sorted({member.split(".")[0] for member in members})
            sizes.append(len(keys))
            for sample in keys:
                assert {f"{sample}.png", f"{sample}.json", f"{sample}.cls"} <= set(members)
                label = json.loads(members[f"{sample}.json"])
                assert label["id"] == sample
                # WebDataset and Hugging Face decode .cls with int(); the index names the bucket.
                bucket = manifest["classes"][int(members[f"{sample}.cls"])]
                assert bucket == label["bucket"] == f"{label['gender']}/{label['age_group']}"
                assert Image.open(io.BytesIO(members[f"{sample}.png"])).size == (SIZE, SIZE)
                buckets[bucket] += 1
            assert len(members) == 3 * len(keys)
    assert sizes == [5, 5, 2]
    assert buckets == Counter(BUCKETS)
    assert len(labels) == 12 and {row["shard"] for row in labels} == set(shards)
    assert 'load_dataset("webdataset"' in readme and "shard-{000000..000002}" in readme


def test_image_size_resizes_and_the_manifest_hashes_the_resized_bytes(
    store, faces, tmp_path
) -> None:
    result = package(store, faces, image_size=64)
    archive = download(store, result, tmp_path)
    manifest = verify_archive(archive)
    assert manifest["image_size"] == 64
    with zipfile.ZipFile(archive) as bundle:
        for face in faces:
            name = f"images/{face.gender}/{face.age_group}/{face.id}.png"
            data = bundle.read(name)
            assert Image.open(io.BytesIO(data)).size == (64, 64)
            assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
            assert data != store.get_bytes(face.object_key)


@pytest.mark.parametrize("fmt", ["zip", "webdataset"])
def test_an_altered_stored_image_is_refused_and_nothing_is_left(store, faces, fmt) -> None:
    victim = faces[7]
    png = store.get_bytes(victim.object_key)
    store.put_bytes(victim.object_key, png[:-1] + bytes([png[-1] ^ 1]))
    with pytest.raises(ArchiveIntegrityError, match=victim.object_key):
        package(store, faces, fmt=fmt, shard_size=5)
    assert not store.exists(ARCHIVE_KEY)
    assert leftovers(store) == []


def test_a_missing_stored_image_fails_the_archive_and_nothing_is_left(store, faces) -> None:
    store.delete(faces[-1].object_key)
    with pytest.raises(ObjectNotFoundError, match=faces[-1].object_key):
        package(store, faces)
    assert not store.exists(ARCHIVE_KEY)
    assert leftovers(store) == []


def rewrite_zip(archive: Path, change: dict[str, bytes | None]) -> None:
    """Rewrite the archive with members replaced (bytes) or removed (None), others unchanged."""
    with zipfile.ZipFile(archive) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(archive, "w") as target:
        for info, data in members:
            replacement = change.pop(info.filename, data)
            if replacement is not None:
                target.writestr(info, replacement)
        for name, data in change.items():
            target.writestr(name, data)


def test_verify_names_a_rewritten_removed_added_or_corrupted_member(store, faces, tmp_path) -> None:
    archive = download(store, package(store, faces), tmp_path)
    image = f"images/{faces[3].gender}/{faces[3].age_group}/{faces[3].id}.png"
    other = store.get_bytes(faces[4].object_key)
    pristine = archive.read_bytes()

    for change, message in (
        ({image: other}, f"{image} does not match its sha256"),
        ({"labels.csv": b"id\n"}, "labels.csv does not match"),
        ({image: None}, f"{image} is in the manifest but not in"),
        ({"images/female/adult/extra.png": other}, "extra.png is in .* but not in its manifest"),
    ):
        archive.write_bytes(pristine)
        rewrite_zip(archive, dict(change))
        with pytest.raises(ArchiveIntegrityError, match=message):
            verify_archive(archive)

    # A flipped byte inside a stored image: its CRC no longer matches.
    with zipfile.ZipFile(io.BytesIO(pristine)) as bundle:
        info = bundle.getinfo(image)
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100
    corrupted = bytearray(pristine)
    corrupted[offset] ^= 0xFF
    archive.write_bytes(corrupted)
    with pytest.raises(ArchiveIntegrityError, match=image):
        verify_archive(archive)


def test_verify_names_an_altered_webdataset_shard(store, faces, tmp_path) -> None:
    key = "datasets/req1/synth-faces-req1.tar"
    result = package(store, faces, key=key, fmt="webdataset", shard_size=5)
    archive = download(store, result, tmp_path)
    with tarfile.open(archive) as outer:
        members = [(info, outer.extractfile(info).read()) for info in outer]
    with tarfile.open(archive, "w") as outer:
        for info, data in members:
            if info.name == "shards/shard-000001.tar":
                data = data.replace(b'"gender_confidence": 0.97', b'"gender_confidence": 0.01')
            outer.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchiveIntegrityError, match=r"shards/shard-000001\.tar does not match"):
        verify_archive(archive)


def test_bad_arguments_are_refused_before_anything_is_written(store, faces) -> None:
    unsafe = ArchiveFace(**{**faces[0].__dict__, "id": "../../etc/passwd"})
    unknown = ArchiveFace(**{**faces[0].__dict__, "gender": "robot"})
    for kwargs, bad_faces, message in (
        ({"fmt": "tar.gz"}, faces, "format 'tar.gz' is not one of: zip, webdataset"),
        ({"shard_size": 0}, faces, "shard_size"),
        ({}, [], "at least one face"),
        ({}, [*faces, faces[0]], "listed twice"),
        ({}, [unsafe], "cannot name a file"),
        ({}, [unknown], "robot/adult"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            package(store, bad_faces, **kwargs)
    assert leftovers(store) == []


class StreamingObjectStore(LocalObjectStore):
    """A local store whose writer cannot seek, as a pipe-backed or streaming-upload backend."""

    @contextlib.contextmanager
    def open_writer(self, key: str, content_type: str | None = None) -> Iterator[IO[bytes]]:
        with super().open_writer(key, content_type) as handle:
            yield _Unseekable(handle)


class _Unseekable(io.RawIOBase):
    def __init__(self, target: IO[bytes]) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        return self.target.write(data)


@pytest.mark.parametrize("fmt", ["zip", "webdataset"])
def test_a_writer_that_cannot_seek_still_gets_a_valid_archive(tmp_path, rendered, fmt) -> None:
    store = StreamingObjectStore(tmp_path / "store")
    faces = put_faces(store, rendered)
    result = package(store, faces, fmt=fmt, shard_size=5)
    manifest = verify_archive(download(store, result, tmp_path))
    assert manifest["counts"]["total"] == 12


def test_s3_round_trip(moto_endpoint, aws_credentials, rendered, tmp_path) -> None:
    store = S3ObjectStore(
        make_bucket(moto_endpoint), prefix="factory", endpoint_url=moto_endpoint, region_name=REGION
    )
    faces = put_faces(store, rendered)
    result = package(store, faces, image_size=96)
    manifest = verify_archive(download(store, result, tmp_path))
    assert manifest["counts"]["total"] == 12 and manifest["image_size"] == 96

    store.delete(faces[0].object_key)
    with pytest.raises(ObjectNotFoundError):
        package(store, faces, key="datasets/req2/synth-faces-req2.zip")
    assert not store.exists("datasets/req2/synth-faces-req2.zip")
