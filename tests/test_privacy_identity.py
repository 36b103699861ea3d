"""Identity embeddings and the protected reference set, with dlib's real models and real images.

Needs the face-recognition-models package (dlib's model files); without it every test here
fails with the MissingBackendError that says what to install.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import dlib
import numpy as np
import pytest
import skimage.data
from PIL import Image

from synth_pipelines.core.errors import (
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)
from synth_pipelines.core.faces.buckets import ALL_BUCKETS
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.privacy.dlib_models import LANDMARKS_FILE, RESNET_FILE
from synth_pipelines.core.privacy.identity import (
    FaceEmbedder,
    ReferenceSet,
    embed_many,
    identity_matches,
    same_identity_pairs,
)


def _encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def inventory() -> list:
    """Two simulator faces per bucket: 20 distinct identities, 256 px."""
    simulator = ProceduralFaceSimulator()
    return [face for bucket in ALL_BUCKETS for face in simulator.generate(bucket, 2, 3)]


@pytest.fixture(scope="module")
def inventory_rgb(inventory) -> list[np.ndarray]:
    return [np.asarray(face.image) for face in inventory]


@pytest.fixture(scope="module")
def inventory_embeddings(embedder, inventory_rgb) -> np.ndarray:
    vectors = embedder.embed_batch(inventory_rgb)
    assert all(v is not None for v in vectors), "the fallback gives every face an embedding"
    return np.stack(vectors)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """The astronaut as an RGB array here (conftest's is a PIL image)."""
    return skimage.data.astronaut()


def test_descriptors_equal_dlibs_own_network(embedder, inventory_rgb, astronaut):
    # The torch port must be dlib's ResNet, not an approximation of it.
    network = dlib.face_recognition_model_v1(str(embedder.models_dir / RESNET_FILE))
    for rgb in (astronaut, inventory_rgb[0], inventory_rgb[7]):
        chip = embedder.face_chip(rgb, fallback=True)
        assert chip is not None and chip.shape == (150, 150, 3)
        theirs = np.array(network.compute_face_descriptor(chip), dtype=np.float32)
        ours = embedder.embed(rgb)
        assert ours is not None and ours.dtype == np.float32 and ours.shape == (128,)
        assert np.abs(ours - theirs).max() < 1e-4


def test_same_image_and_same_seed_embed_identically(embedder, inventory, inventory_rgb):
    first, again = embedder.embed(inventory_rgb[4]), embedder.embed(inventory_rgb[4])
    assert np.linalg.norm(first - again) < 1e-6
    face = inventory[4]
    rerendered = ProceduralFaceSimulator().render(face.bucket, face.seed).image
    twin = embedder.embed(np.asarray(rerendered))
    (match,) = identity_matches(first[None], twin[None])
    assert match[:2] == (0, 0) and match[2] < 1e-6


def test_distinct_simulator_faces_are_never_identical(inventory_embeddings):
    distances = np.linalg.norm(inventory_embeddings[:, None] - inventory_embeddings[None], axis=2)
    off_diagonal = distances[~np.eye(len(distances), dtype=bool)]
    assert off_diagonal.min() > 0.05
    assert np.isfinite(inventory_embeddings).all()


def test_astronaut_is_detected_and_matches_itself_after_resize_and_jpeg(embedder, astronaut):
    original = embedder.embed(astronaut, fallback_full_image=False)
    assert original is not None, "a real frontal photo must be detected, not guessed"
    smaller = Image.fromarray(astronaut).resize((420, 420), Image.Resampling.BICUBIC)
    copy = embedder.embed_bytes(_encode(smaller, "JPEG", quality=85))
    matches = identity_matches(copy[None], original[None])
    assert [m[:2] for m in matches] == [(0, 0)]
    assert matches[0][2] < 0.3


def _strictly_detected(embedder: FaceEmbedder, rgbs: list[np.ndarray]) -> list[int]:
    """Indices of faces the detector finds on its own, as PNG and as JPEG."""
    return [
        i
        for i, rgb in enumerate(rgbs)
        if embedder.embed(rgb, fallback_full_image=False) is not None
        and embedder.embed(_decode(_encode(rgb, "JPEG", quality=90)), fallback_full_image=False)
        is not None
    ]


def test_reference_folder_catches_a_planted_inventory_face(
    tmp_path, embedder, inventory_rgb, inventory_embeddings
):
    detected = _strictly_detected(embedder, inventory_rgb)
    k, m = detected[2], detected[-1]
    refs = tmp_path / "refs"
    (refs / "inventory" / "jpeg").mkdir(parents=True)
    (refs / "inventory" / f"face_{k}.png").write_bytes(_encode(inventory_rgb[k]))
    jpeg = _encode(inventory_rgb[m], "JPEG", quality=90)
    (refs / "inventory" / "jpeg" / f"face_{m}.jpg").write_bytes(jpeg)
    (refs / "README.txt").write_text("protected photos")

    reference = ReferenceSet.from_folder(refs, embedder)

    assert reference.names == [f"inventory/face_{k}.png", f"inventory/jpeg/face_{m}.jpg"]
    assert reference.embeddings.shape == (2, 128) and reference.embeddings.dtype == np.float32
    assert list(reference.skipped) == ["README.txt"]
    assert reference.skipped["README.txt"].startswith("not an image file")
    matches = identity_matches(inventory_embeddings, reference.embeddings)
    found = {(i, j): d for i, j, d in matches}
    assert found[(k, 0)] < 1e-3
    assert found[(m, 1)] < 0.3
    # dlib sees many simulator faces as alike, so others may match too; the planted ones are
    # each reference's nearest face.
    for j, planted in enumerate((k, m)):
        nearest = min((d, i) for (i, jj), d in found.items() if jj == j)
        assert nearest[1] == planted


def test_unrelated_photos_catch_no_simulator_face(
    tmp_path, embedder, astronaut, inventory_embeddings
):
    refs = tmp_path / "unrelated"
    refs.mkdir()
    (refs / "astronaut.png").write_bytes(_encode(astronaut))
    (refs / "coffee.png").write_bytes(_encode(skimage.data.coffee()))

    reference = ReferenceSet.from_folder(refs, embedder)

    assert reference.names == ["astronaut.png"]
    assert reference.skipped == {
        "coffee.png": "no face detected: crop the photo closer to the face"
    }
    # dlib's 0.6 is calibrated on real photos: cartoon simulator faces sit 0.5-0.7 from this
    # real face (0.496 at the closest of 200), so 0.6 flags ~15% of them. 0.45 still catches a
    # re-encoded copy of the photo (~0.1) and no simulator face.
    assert identity_matches(inventory_embeddings, reference.embeddings, threshold=0.45) == []
    copy = embedder.embed_bytes(_encode(astronaut, "JPEG", quality=80))
    assert len(identity_matches(copy[None], reference.embeddings, threshold=0.45)) == 1


def test_unreadable_files_are_skipped_with_a_reason(tmp_path, embedder):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    (tmp_path / "notes.md").write_text("who is in which photo")
    reference = ReferenceSet.from_folder(tmp_path, embedder)
    assert reference.names == []
    assert reference.embeddings.shape == (0, 128)
    assert reference.skipped["broken.jpg"].startswith("not a decodable image")
    assert reference.skipped["notes.md"].startswith("not an image file: suffix '.md'")
    assert identity_matches(np.zeros((3, 128)), reference.embeddings) == []


def test_missing_reference_folder_raises_naming_it(tmp_path, embedder):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(InvalidInputError, match="no_such_folder"):
        ReferenceSet.from_folder(missing, embedder)
    (tmp_path / "a_file.png").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="is not a folder"):
        ReferenceSet.from_folder(tmp_path / "a_file.png", embedder)


def test_matching_agrees_with_brute_force():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 0.1, (40, 128))
    queries = centres[rng.integers(0, 40, 1100)] + rng.normal(0, 0.02, (1100, 128))
    distances = np.linalg.norm(queries[:, None] - centres[None], axis=2)
    expected = [(i, j) for i, j in zip(*np.nonzero(distances < 0.3), strict=True)]
    matches = identity_matches(queries, centres, threshold=0.3)
    assert [(i, j) for i, j, _ in matches] == expected
    assert np.allclose([d for _, _, d in matches], distances[distances < 0.3], atol=1e-9)

    within = np.linalg.norm(queries[:300, None] - queries[None, :300], axis=2)
    brute = [(i, j) for i in range(300) for j in range(i + 1, 300) if within[i, j] < 0.3]
    assert [(i, j) for i, j, _ in same_identity_pairs(queries[:300], 0.3)] == brute
    with pytest.raises(InvalidInputError, match=r"\(n, 128\)"):
        identity_matches(np.zeros((2, 64)), centres)


def test_embed_many_in_workers_equals_in_process(embedder):
    # More than 32 images: embed_many starts a worker process rather than working alone. The
    # first chunks (16 images, the corrupt one among them) are queued for the worker at once,
    # before this process could take them, so the worker's results are compared too.
    simulator = ProceduralFaceSimulator()
    faces = simulator.generate("female/adult", 24, 8) + simulator.generate("male/teen", 24, 8)
    datas = [_encode(face.image) for face in faces]
    datas.insert(5, b"corrupt bytes")
    in_process = embed_many(datas, workers=1, embedder=embedder)
    in_workers = embed_many(datas, workers=2, embedder=embedder)
    assert in_process[5] is None and in_workers[5] is None
    assert all(v is not None for k, v in enumerate(in_workers) if k != 5)
    for ours, theirs in zip(in_process, in_workers, strict=True):
        if ours is not None:
            assert np.abs(ours - theirs).max() < 1e-5


def test_embed_handles_odd_inputs(embedder):
    with pytest.raises(InvalidInputError, match="uint8 RGB"):
        embedder.embed(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InvalidInputError, match="uint8 RGB"):
        embedder.embed(np.zeros((64, 64), np.uint8))
    with pytest.raises(InvalidInputError, match="not a decodable image"):
        embedder.embed_bytes(b"GIF89a but nothing else")
    assert embedder.embed(np.full((16, 16, 3), 128, np.uint8)) is None
    flat = np.full((200, 200, 3), 128, np.uint8)
    assert embedder.embed(flat, fallback_full_image=False) is None
    assert embedder.embed(flat) is not None  # fallback: the whole image is the face box
    with pytest.raises(InvalidInputError, match="workers"):
        embed_many([], workers=0, embedder=embedder)


def test_models_dir_without_the_models_says_what_is_missing(tmp_path):
    embedder = FaceEmbedder(models_dir=tmp_path)  # cheap: models load at first use
    with pytest.raises(MissingBackendError, match=f"lacks {LANDMARKS_FILE}, {RESNET_FILE}"):
        embedder.embed(np.zeros((64, 64, 3), np.uint8))


def test_corrupt_resnet_file_is_a_missing_checkpoint(tmp_path, embedder):
    shutil.copy(embedder.models_dir / LANDMARKS_FILE, tmp_path / LANDMARKS_FILE)
    with (embedder.models_dir / RESNET_FILE).open("rb") as source:
        (tmp_path / RESNET_FILE).write_bytes(source.read(2_000_000))  # cut mid-way
    with pytest.raises(MissingCheckpointError, match="reinstall face-recognition-models"):
        FaceEmbedder(models_dir=Path(tmp_path)).load()
